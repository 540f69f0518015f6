// The agent's data path with real sockets on loopback: the packet size per path
// (DPLPMTUD up to 64 KiB datagrams on loopback, the relay's limit on a relayed path) and
// the UDP socket buffers a bulk transfer needs.
import { createServer, connect, type Server } from 'node:net';
import * as dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { cluster, waitFor, type Cluster } from './helpers.js';
import { SEND_HEADER_SIZE, DEFAULT_MAX_PAYLOAD } from '../../src/relay/wire.js';
import { UDP_SOCKET_BUFFER_BYTES } from '../../src/agent/udp-endpoint.js';
import { RELAY_PATH_MAX_PACKET, directPathMaxPacket } from '../../src/agent/packet-size.js';

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

/** Every UDP datagram this process sends from now on: its length. */
function recordDatagramSizes(): number[] {
  const sizes: number[] = [];
  dgram.Socket.prototype.send = function (this: dgram.Socket, msg: unknown, ...rest: unknown[]) {
    if (msg instanceof Uint8Array) sizes.push(msg.length);
    return (realSend as (...a: unknown[]) => void).call(this, msg, ...rest);
  } as typeof realSend;
  return sizes;
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

describe('the largest transport packet per path (the DPLPMTUD bound)', () => {
  it('loopback: a 64 KiB UDP datagram less the agent overhead; otherwise Ethernet; relayed: the relay SEND limit', () => {
    // overhead: inner type 1 + session header 16 + tag 16
    expect(directPathMaxPacket('127.0.0.1')).toBe(65_507 - 33);
    expect(directPathMaxPacket('127.1.2.3')).toBe(65_507 - 33);
    expect(directPathMaxPacket('::1')).toBe(65_527 - 33);
    expect(directPathMaxPacket('192.168.1.7')).toBe(1472 - 33);
    expect(directPathMaxPacket('2001:db8::1')).toBe(1452 - 33);
    expect(RELAY_PATH_MAX_PACKET).toBe(DEFAULT_MAX_PAYLOAD - 33);
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

  it('a relayed path never sends more than the relay forwards in one SEND', async () => {
    c = await cluster(2);
    for (let i = 0; i < 2; i++) await c.startAgent(i, { relayOnly: true });
    const cl = c;
    await waitFor(() => cl.parties.every((p) => p.agent!.status().peers.every((q) => q.state === 'relay')), 10_000, 'relay paths');
    const sizes = recordDatagramSizes();
    await bulkThrough(cl, 2 * 1024 * 1024);
    expect(sizes.length).toBeGreaterThan(1000);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(SEND_HEADER_SIZE + DEFAULT_MAX_PAYLOAD);
    // and the path probed beyond the base: packets larger than 1200 + overheads went out
    expect(sizes.filter((n) => n > 1200 + 33 + SEND_HEADER_SIZE).length).toBeGreaterThan(100);
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
