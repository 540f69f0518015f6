// The Node driver of a connection (src/transport/node.ts): the data path runs inside the I/O
// callback that brought the bytes (a datagram's receive, a TCP read), with no hop through a
// microtask; a deadline still ahead waits for a timer instead of turning the event loop
// until it comes (one wake-up per turn); and a timer whose deadline went away is re-armed
// rather than left to fire for nothing.
import { describe, it, expect, afterEach } from 'vitest';
import { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Connection } from '../../src/transport/connection.js';
import { ConnectionDriver, bindStreamToSocket } from '../../src/transport/node.js';
import { parseOk } from './packets.js';

const cleanups: Array<() => void> = [];
afterEach(() => { for (const c of cleanups.splice(0)) c(); });

function driver(opts: { ackEveryPackets?: number } = {}): { d: ConnectionDriver; sent: Uint8Array[] } {
  const sent: Uint8Array[] = [];
  const conn = new Connection({ side: 0, ...opts }, performance.now());
  const d = new ConnectionDriver(conn, (b) => sent.push(new Uint8Array(b)));
  cleanups.push(() => d.stop());
  return { d, sent };
}

describe('ConnectionDriver', () => {
  it('receive(): an ACK the packet makes due leaves before receive() returns', () => {
    const peer = new Connection({ side: 1 }, performance.now());
    const id = peer.openStream(new Uint8Array([1]));
    peer.write(id, new Uint8Array(40).fill(7));
    const [pkt] = peer.poll(performance.now());
    const { d, sent } = driver({ ackEveryPackets: 1 });
    d.receive(pkt!);
    // synchronously: no await between receive() and this check
    expect(sent.length).toBe(1);
    expect(parseOk(sent[0]!).frames.some((f) => f.type === 'ack')).toBe(true);
  });

  it("a TCP read is built and sent inside the socket's 'data' callback", () => {
    const { d, sent } = driver();
    const socket = new Socket();
    cleanups.push(() => socket.destroy());
    const id = d.conn.openStream(new Uint8Array([1]));
    bindStreamToSocket(d, id, socket);
    socket.emit('data', Buffer.from('hello, peer'));
    expect(sent.length).toBe(1);
    const stream = parseOk(sent[0]!).frames.find((f) => f.type === 'stream');
    expect(stream && Buffer.from((stream as { data: Uint8Array }).data).toString()).toBe('hello, peer');
  });

  it('a deadline less than a millisecond ahead is one timer, not a turn of the loop per flush', async () => {
    const { d } = driver();
    // the connection always has something due 0.4 ms from now (as a scheduled tail copy or
    // a paced packet is), which polling never retires
    let polls = 0;
    const poll = d.conn.poll.bind(d.conn);
    d.conn.poll = (now: number) => { polls++; return poll(now); };
    d.conn.nextDeadline = () => performance.now() + 0.4;
    const start = performance.now();
    d.flush();
    await new Promise((r) => setTimeout(r, 30));
    const elapsedMs = performance.now() - start;
    d.stop();
    // a timer cannot fire more than once per millisecond of loop time; setImmediate would
    // flush several times per timer tick
    expect(polls).toBeGreaterThan(1);
    expect(polls).toBeLessThanOrEqual(Math.ceil(elapsedMs) + 2);
  });

  it('a deadline that moved a millisecond or more later re-arms the timer instead of waking for nothing', async () => {
    const { d } = driver();
    let polls = 0;
    const poll = d.conn.poll.bind(d.conn);
    d.conn.poll = (now: number) => { polls++; return poll(now); };
    // an ACK owed in 2 ms arms the timer; then the ACK leaves on a reply and only a far
    // deadline (the idle timer) is left
    let deadline = performance.now() + 2;
    d.conn.nextDeadline = () => deadline;
    d.flush();
    deadline = performance.now() + 60_000;
    d.flush();
    polls = 0;
    await new Promise((r) => setTimeout(r, 15));
    expect(polls).toBe(0);
    // and a deadline that moves earlier is still met
    deadline = performance.now() + 2;
    d.flush();
    polls = 0;
    await new Promise((r) => setTimeout(r, 15));
    expect(polls).toBeGreaterThan(0);
  });
});
