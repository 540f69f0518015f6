// Real sockets (issue #4 item 7): two transport endpoints on loopback UDP, through the Noise
// session layer and a userspace proxy that drops 2 % of the datagrams each way and holds
// back another 3 % by 1–8 ms (reordering), move 20 MB on one stream; both ends compute the
// SHA-256 and they must match. Also exercised without the session layer, so a failure
// points at the right layer.
import { describe, it, expect, afterEach } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { generateKeyPair } from '../../src/noise/index.js';
import { LossyProxy, udpEndpoint, type UdpEndpoint } from './udp-helpers.js';

const cleanups: Array<() => void> = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

interface TransferResult {
  sentSha: string;
  recvSha: string;
  bytes: number;
  ms: number;
  a: UdpEndpoint;
  b: UdpEndpoint;
  proxy: LossyProxy;
}

async function transfer(total: number, noise: boolean, seed: number): Promise<TransferResult> {
  const proxy = await LossyProxy.create({ loss: 0.02, reorder: 0.03, reorderMaxMs: 8, seed });
  cleanups.push(() => proxy.close());
  const ka = generateKeyPair();
  const kb = generateKeyPair();
  const a = await udpEndpoint({ side: 0, remotePort: proxy.portA, noise: noise ? { staticKey: ka, peer: kb.publicKey } : undefined });
  cleanups.push(() => a.close());
  const b = await udpEndpoint({ side: 1, remotePort: proxy.portB, noise: noise ? { staticKey: kb, peer: ka.publicKey } : undefined });
  cleanups.push(() => b.close());
  proxy.setClients(a.socket.address().port, b.socket.address().port);

  const data = randomBytes(total);
  const sentSha = createHash('sha256').update(data).digest('hex');
  const t0 = performance.now();

  const received = new Promise<{ sha: string; bytes: number }>((resolve, reject) => {
    const h = createHash('sha256');
    let bytes = 0;
    b.driver.onEvent = (e) => {
      if (e.type === 'connectionClosed') reject(new Error(`b: connection closed: ${e.reason}`));
      if (e.type !== 'open') return;
      const id = e.id;
      const drain = () => {
        let c: Uint8Array | null;
        while ((c = b.conn.read(id))) {
          h.update(c);
          bytes += c.length;
        }
      };
      b.driver.bind(id, {
        onReadable: drain,
        onFin: () => {
          drain();
          resolve({ sha: h.digest('hex'), bytes });
        },
        onReset: (code) => reject(new Error(`b: stream reset ${code}`)),
        onWritable: () => {},
        onClosed: () => {},
      });
      drain();
    };
  });

  a.driver.onEvent = (e) => {
    if (e.type === 'connectionClosed') throw new Error(`a: connection closed: ${e.reason}`);
  };
  const id = a.conn.openStream(new TextEncoder().encode('bulk'));
  let off = 0;
  const pump = () => {
    while (off < data.length) {
      const n = a.conn.write(id, data.subarray(off, Math.min(data.length, off + 64 * 1024)));
      if (n === 0) break;
      off += n;
    }
    if (off === data.length) a.conn.finish(id);
    a.driver.scheduleFlush();
  };
  a.driver.bind(id, { onReadable: () => {}, onFin: () => {}, onReset: () => {}, onWritable: pump, onClosed: () => {} });
  pump();

  const r = await received;
  return { sentSha, recvSha: r.sha, bytes: r.bytes, ms: performance.now() - t0, a, b, proxy };
}

describe('transport over real UDP sockets on loopback (2 % loss + reordering proxy)', () => {
  it('plain UDP: 4 MB arrive with the same SHA-256', async () => {
    const r = await transfer(4 * 1024 * 1024, false, 11);
    expect(r.bytes).toBe(4 * 1024 * 1024);
    expect(r.recvSha).toBe(r.sentSha);
    expect(r.proxy.stats.dropped).toBeGreaterThan(0);
    expect(r.proxy.stats.reordered).toBeGreaterThan(0);
    expect(r.a.conn.stats().packetsLost).toBeGreaterThan(0);
    expect(r.a.conn.stats().cwndViolations).toBe(0);
  }, 60_000);

  it('through the Noise session layer: 20 MB arrive with the same SHA-256 on both ends', async () => {
    const r = await transfer(20 * 1024 * 1024, true, 12);
    console.log(`20 MB through Noise + 2 % loss proxy: ${(r.ms / 1000).toFixed(1)} s, ${((r.bytes * 8) / r.ms / 1000).toFixed(1)} Mbit/s, ` +
      `proxy ${JSON.stringify(r.proxy.stats)}, a lost ${r.a.conn.stats().packetsLost}, session drops a ${JSON.stringify([...r.a.sessionDrops])} b ${JSON.stringify([...r.b.sessionDrops])}`);
    expect(r.bytes).toBe(20 * 1024 * 1024);
    expect(r.recvSha).toBe(r.sentSha);
    expect(r.proxy.stats.dropped).toBeGreaterThan(100);
    // datagrams arrive authenticated: nothing failed decryption on either side
    expect(r.a.sessionDrops.get('decrypt_failed') ?? 0).toBe(0);
    expect(r.b.sessionDrops.get('decrypt_failed') ?? 0).toBe(0);
    expect(r.a.conn.stats().cwndViolations).toBe(0);
    expect(r.b.conn.stats().malformed).toBe(0);
  }, 60_000);
});
