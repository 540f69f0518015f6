// The data path's UDP sockets (src/common/udp-socket.ts): dgram resolves every destination,
// and Node's resolver answers even an IP literal on a later tick; ours answers a literal in
// the same call, so a datagram leaves while the code that sent it still runs.
import { describe, it, expect } from 'vitest';
import { createSocket, type Socket } from 'node:dgram';
import { createUdpSocket, literalFirstLookup } from '../../src/common/udp-socket.js';

function lookupNow(host: string): { sync: boolean; result: Promise<{ address: string; family: number }> } {
  let sync = false;
  let inCall = true;
  const result = new Promise<{ address: string; family: number }>((resolve, reject) => {
    literalFirstLookup(host, 0, (err, address, family) => {
      sync = inCall;
      if (err) reject(err); else resolve({ address, family });
    });
  });
  inCall = false;
  return { sync, result };
}

function bound(s: Socket): Promise<number> {
  return new Promise((resolve) => s.bind(0, '127.0.0.1', () => resolve(s.address().port)));
}

/**
 * Sends one datagram and queues a tick right after the call: a send made within the call
 * (lookup answered at once) has queued its completion before that tick, a send waiting on
 * the resolver's tick completes after it.
 */
async function sentWithinCall(s: Socket, port: number): Promise<boolean> {
  const order: string[] = [];
  await new Promise<void>((resolve) => {
    s.send(Buffer.from('x'), port, '127.0.0.1', () => { order.push('sent'); if (order.length === 2) resolve(); });
    process.nextTick(() => { order.push('tick'); if (order.length === 2) resolve(); });
  });
  return order[0] === 'sent';
}

describe('literalFirstLookup', () => {
  it('answers IPv4, IPv6 and zoned IPv6 literals within the call', async () => {
    for (const [host, family] of [['127.0.0.1', 4], ['::1', 6], ['fe80::1%lo', 6]] as const) {
      const r = lookupNow(host);
      expect(r.sync).toBe(true);
      expect(await r.result).toEqual({ address: host, family });
    }
  });

  it('hands a name to the resolver', async () => {
    const r = lookupNow('localhost');
    expect(r.sync).toBe(false);
    const { address } = await r.result;
    expect(['127.0.0.1', '::1']).toContain(address);
  });
});

describe('createUdpSocket', () => {
  it('sends to an IP literal within the call, where a plain dgram socket waits a tick', async () => {
    const sink = createSocket('udp4');
    const ours = createUdpSocket({ type: 'udp4' });
    const plain = createSocket('udp4');
    try {
      const port = await bound(sink);
      await bound(ours);
      await bound(plain);
      expect(await sentWithinCall(ours, port)).toBe(true);
      // the control: the same measurement sees the resolver's tick of a plain socket
      expect(await sentWithinCall(plain, port)).toBe(false);
    } finally {
      for (const s of [sink, ours, plain]) s.close();
    }
  });
});
