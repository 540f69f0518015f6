// The agent's data path with real sockets on loopback: the packet size per path
// (DPLPMTUD up to 64 KiB datagrams on loopback, the relay's limit on a relayed path) and
// the UDP socket buffers a bulk transfer needs.
import { createServer, connect, type Server } from 'node:net';
import * as dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { cluster, waitFor, type Cluster } from './helpers.js';
import { FRAME_SEND, MAX_FRAME_SIZE, SEND_HEADER_SIZE } from '../../src/relay/wire.js';
import { UDP_SOCKET_BUFFER_BYTES } from '../../src/agent/udp-endpoint.js';
import { directPathMaxPacket, relayPathMaxPacket } from '../../src/agent/packet-size.js';
import type * as dgramTypes from 'node:dgram';

let c: Cluster | undefined;
let sink: Server | undefined;
const realSend = dgram.Socket.prototype.send;
afterEach(async () => {
  dgram.Socket.prototype.send = realSend;
  sink?.close();
  sink = undefined;
  await c?.stopAll();
  c = undefined;
});

interface SentDatagram { length: number; first: number; socket: dgramTypes.Socket }

/** Every UDP datagram this process sends from now on (filled in as they go): its length, first byte and socket. */
function recordDatagrams(): SentDatagram[] {
  const sent: SentDatagram[] = [];
  dgram.Socket.prototype.send = function (this: dgram.Socket, msg: unknown, ...rest: unknown[]) {
    if (msg instanceof Uint8Array) {
      // send(buffer, offset, length, port, address): the relay forwards a RECV so
      const length = typeof rest[0] === 'number' && typeof rest[1] === 'number' && typeof rest[2] === 'number' ? rest[1] : msg.length;
      const offset = length === msg.length ? 0 : (rest[0] as number);
      sent.push({ length, first: msg[offset]!, socket: this });
    }
    return (realSend as (...a: unknown[]) => void).call(this, msg, ...rest);
  } as typeof realSend;
  return sent;
}

/** Every UDP datagram this process sends from now on: its length. */
function recordDatagramSizes(): number[] {
  const sizes: number[] = [];
  dgram.Socket.prototype.send = function (this: dgram.Socket, msg: unknown, ...rest: unknown[]) {
    if (msg instanceof Uint8Array) sizes.push(msg.length);
    return (realSend as (...a: unknown[]) => void).call(this, msg, ...rest);
  } as typeof realSend;
  return sizes;
}

/** The relay server's UDP socket (to tell its forwards from the agents' sends). */
function relaySocketOf(cl: Cluster): dgramTypes.Socket {
  return (cl.relays[0]!.server as unknown as { udpSock: dgramTypes.Socket }).udpSock;
}

/** Party 1's "MPyC listener": counts the bytes of its connection; resolves when `n` arrived. */
function countingSink(port: number, n: number): Promise<void> {
  return new Promise((resolve) => {
    let got = 0;
    sink = createServer((s) => {
      s.on('error', () => { /* the test ends the connection abruptly */ });
      s.on('data', (d: Buffer) => { got += d.length; if (got >= n) resolve(); });
    });
    sink.listen(port, '127.0.0.1');
  });
}

async function bulkThrough(cl: Cluster, bytes: number): Promise<void> {
  const arrived = countingSink(cl.parties[1]!.localBase + 1, bytes);
  const s = connect(cl.parties[0]!.localBase + 1, '127.0.0.1');
  s.on('error', () => { /* destroyed below */ });
  s.write(Buffer.alloc(bytes, 0x42));
  await arrived;
  s.destroy();
}

/** Streams bytes from party 0 to party 1 until `done()` or `ms` pass (whichever first). */
async function streamUntil(cl: Cluster, done: () => boolean, ms: number): Promise<void> {
  countingSink(cl.parties[1]!.localBase + 1, Infinity);
  const s = connect(cl.parties[0]!.localBase + 1, '127.0.0.1');
  s.on('error', () => { /* destroyed below */ });
  const chunk = Buffer.alloc(256 * 1024, 0x42);
  const started = performance.now();
  try {
    while (!done() && performance.now() - started < ms) {
      if (!s.write(chunk)) await new Promise((r) => { s.once('drain', r); setTimeout(r, 100); });
    }
  } finally {
    s.destroy();
  }
}

describe('the largest transport packet per path (the DPLPMTUD bound)', () => {
  it('loopback: a 64 KiB UDP datagram less the agent overhead; otherwise Ethernet; relayed: the relay SEND limit', () => {
    // overhead: inner type 1 + session header 16 + tag 16
    expect(directPathMaxPacket('127.0.0.1')).toBe(65_507 - 33);
    expect(directPathMaxPacket('127.1.2.3')).toBe(65_507 - 33);
    expect(directPathMaxPacket('::1')).toBe(65_527 - 33);
    expect(directPathMaxPacket('192.168.1.7')).toBe(1472 - 33);
    expect(directPathMaxPacket('2001:db8::1')).toBe(1452 - 33);
  });

  it('relayed: sized like a direct path to the relay with the 41-byte SEND header inside, at most the relay\'s frame limit', () => {
    // 65 507-byte frames (the largest IPv4 UDP datagram) over loopback, either family
    expect(relayPathMaxPacket('127.0.0.1')).toBe(65_507 - 41 - 33);
    expect(relayPathMaxPacket('::1')).toBe(65_507 - 41 - 33);
    expect(relayPathMaxPacket('192.168.1.7')).toBe(1472 - 41 - 33);
    expect(relayPathMaxPacket('2001:db8::1')).toBe(1452 - 41 - 33);
    // an unknown relay address (WebSocket, host not resolved): the Internet's size
    expect(relayPathMaxPacket(undefined)).toBe(1472 - 41 - 33);
  });
});

describe('agent data path on loopback', () => {
  it('the direct loopback path grows its datagrams far beyond the 1200-byte base (DPLPMTUD); bulk arrives whole', async () => {
    c = await cluster(2);
    for (let i = 0; i < 2; i++) await c.startAgent(i);
    const cl = c;
    await waitFor(() => cl.parties.every((p) => p.agent!.status().peers.every((q) => q.state === 'direct')), 10_000, 'direct paths');
    const sizes = recordDatagramSizes();
    await bulkThrough(cl, 8 * 1024 * 1024);
    const large = sizes.filter((n) => n > 16 * 1024).length;
    expect(large).toBeGreaterThan(50); // 8 MiB in 64 KiB datagrams is ~130 of them
    expect(Math.max(...sizes)).toBeLessThanOrEqual(65_507);
  }, 40_000);

  it('a relayed path through a relay on loopback grows to 64 KiB frames, which the relay forwards whole', async () => {
    c = await cluster(2);
    for (let i = 0; i < 2; i++) await c.startAgent(i, { relayOnly: true });
    const cl = c;
    await waitFor(() => cl.parties.every((p) => p.agent!.status().peers.every((q) => q.state === 'relay')), 10_000, 'relay paths');
    const sent = recordDatagrams();
    await bulkThrough(cl, 8 * 1024 * 1024);
    const relaySock = relaySocketOf(cl);
    const forwarded = sent.filter((d) => d.socket === relaySock && d.length > 16 * 1024);
    expect(forwarded.length).toBeGreaterThan(50); // 8 MiB in 64 KiB frames is ~130 of them
    expect(Math.max(...sent.map((d) => d.length))).toBeLessThanOrEqual(MAX_FRAME_SIZE);
    expect(cl.relays[0]!.server.counters.drops.oversized).toBe(0);
  }, 40_000);

  it('a relay that forwards at most 1400 payload bytes: the probes above it are dropped (counted) and the transfer stays below', async () => {
    const limit = 1400;
    c = await cluster(2, { relayOptions: { maxPayload: limit } });
    const sent = recordDatagrams(); // from the start: the probing begins with the path
    for (let i = 0; i < 2; i++) await c.startAgent(i, { relayOnly: true });
    const cl = c;
    await waitFor(() => cl.parties.every((p) => p.agent!.status().peers.every((q) => q.state === 'relay')), 10_000, 'relay paths');
    const relaySock = relaySocketOf(cl);
    const found = SEND_HEADER_SIZE + limit - 8 - 64;
    // the binary search from 64 KiB down loses three probes per size too large: stream until
    // it found the limit (bounded)
    await streamUntil(cl, () => sent.some((d) => d.socket === relaySock && d.length > found), 20_000);
    const agentSends = sent.filter((d) => d.socket !== relaySock && d.first === FRAME_SEND);
    const tooLarge = agentSends.filter((d) => d.length > SEND_HEADER_SIZE + limit);
    // the agents probed beyond the limit (their bound for a loopback relay is 64 KiB), each
    // such frame was dropped and counted, and only probes were that large: data stayed below
    expect(tooLarge.length).toBeGreaterThan(0);
    // the agents keep probing while this runs, and the last probes may still be in the relay's
    // socket buffer: compare the relay's count with the oversize frames sent up to the same moment
    const tooLargeNow = (): number => sent.filter((d) => d.socket !== relaySock && d.first === FRAME_SEND && d.length > SEND_HEADER_SIZE + limit).length;
    const oversized = (): number => cl.relays[0]!.server.counters.drops.oversized;
    await waitFor(() => oversized() === tooLargeNow(), 3000, 'the relay counted every oversize probe').catch(() => undefined);
    expect(oversized()).toBe(tooLargeNow());
    expect(tooLarge.length).toBeLessThan(100);
    expect(agentSends.length).toBeGreaterThan(1000);
    // and the search found the limit: frames within 64 bytes of it were forwarded
    const forwarded = sent.filter((d) => d.socket === relaySock).map((d) => d.length);
    expect(Math.max(...forwarded)).toBeLessThanOrEqual(SEND_HEADER_SIZE + limit - 8);
    expect(Math.max(...forwarded)).toBeGreaterThan(found);
  }, 40_000);

  it('the UDP sockets ask the kernel for buffers that hold a window of datagrams', async () => {
    c = await cluster(2);
    const a = await c.startAgent(0);
    const granted = (a as unknown as { udp: { receiveBufferBytes: number } }).udp.receiveBufferBytes;
    // the kernel reports twice what it grants (overhead); it grants at most net.core.rmem_max
    expect(granted).toBeGreaterThan(2 * 212_992); // more than the default buffer
    expect(granted).toBeLessThanOrEqual(2 * UDP_SOCKET_BUFFER_BYTES);
  }, 20_000);
});
