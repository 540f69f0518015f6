// The ping-pong and bulk workloads over any byte stream (a TCP socket, a hyperdht Noise
// stream, a udx-native stream), so every system runs exactly the same code at both ends.
//   server side  a connection's first byte picks the workload: 'P' ping (echo every byte
//                back), 'B' bulk (bytes until the client's FIN, answered by the received
//                byte count, u64 LE, and FIN)
//   ping         round trips of `size` bytes, one at a time; each message starts with
//                PING_TAG_MAGIC and its sequence number (u32 LE), the tag that
//                src/common/stage-trace.ts reads at the agents' TCP read and write
//   bulk         one direction, until `bytes` are sent or `seconds` have passed, then
//                half-close and wait for the server's count: the time covers every byte
import { PING_TAG_MAGIC } from '../../src/common/stage-trace.js';

/** What the workloads need of a stream: node:net Socket and streamx Duplex both fit. */
export interface ByteStream {
  write(b: Buffer): boolean;
  end(): unknown;
  on(ev: 'data', cb: (d: Buffer) => void): unknown;
  on(ev: 'end' | 'drain' | 'close', cb: () => void): unknown;
  on(ev: 'error', cb: (e: Error) => void): unknown;
  once(ev: 'drain' | 'close' | 'end', cb: () => void): unknown;
  destroy(): unknown;
}

/** Serves one connection; onFirstByte is called once with the arrival of its first byte. */
export function serveConnection(s: ByteStream, onFirstByte: () => void): void {
  let mode: 'P' | 'B' | null = null;
  let got = 0;
  s.on('data', (d: Buffer) => {
    onFirstByte();
    if (mode === null) { mode = d[0] === 0x42 ? 'B' : 'P'; d = d.subarray(1); }
    if (mode === 'P') { if (d.length) s.write(d); return; }
    got += d.length;
  });
  s.on('end', () => {
    if (mode !== 'B') { s.end(); return; }
    const count = Buffer.alloc(8);
    count.writeBigUInt64LE(BigInt(got));
    s.write(count);
    s.end();
  });
  s.on('error', () => s.destroy());
}

/** A ping message of `size` (≥ 8) bytes carrying sequence number `seq`. */
export function pingMessage(size: number, seq: number): Buffer {
  const msg = Buffer.alloc(Math.max(8, size), 0x61);
  msg.writeUInt32LE(PING_TAG_MAGIC, 0);
  msg.writeUInt32LE(seq >>> 0, 4);
  return msg;
}

/** n round trips of `size` bytes after `warm` discarded ones; returns µs per round trip. */
export function pingPong(send: (b: Buffer) => void, onData: (cb: (d: Buffer) => void) => void, size: number, warm: number, n: number): Promise<number[]> {
  return new Promise((resolve) => {
    const samples: number[] = [];
    let i = 0;
    let have = 0;
    let t = 0;
    const next = (): void => { have = 0; const m = pingMessage(size, i + 1); t = performance.now(); send(m); };
    onData((d) => {
      have += d.length;
      if (have < size) return;
      const us = (performance.now() - t) * 1000;
      if (i++ >= warm) samples.push(us);
      if (samples.length >= n) resolve(samples);
      else next();
    });
    next();
  });
}

/** Ping-pong client side of a connected stream (sends the 'P' selector first). */
export async function pingClient(s: ByteStream, size: number, warm: number, n: number): Promise<number[]> {
  s.write(Buffer.from('P'));
  let cb: ((d: Buffer) => void) | null = null;
  s.on('data', (d: Buffer) => cb?.(d));
  return pingPong((b) => s.write(b), (f) => { cb = f; }, size, warm, n);
}

export interface BulkResult { bytes: number; ms: number; mbitPerS: number }

/** Bulk client side of a connected stream: `limit` bytes (at most `seconds`), then FIN. */
export async function bulkClient(s: ByteStream, limit: number, seconds: number): Promise<BulkResult> {
  const until = performance.now() + seconds * 1000;
  const chunk = Buffer.alloc(64 * 1024, 0x62);
  const t0 = performance.now();
  let reply = Buffer.alloc(0);
  const done = new Promise<number>((resolve) => s.on('data', (d: Buffer) => {
    reply = Buffer.concat([reply, d]);
    if (reply.length >= 8) resolve(Number(reply.readBigUInt64LE(0)));
  }));
  s.write(Buffer.from('B'));
  let sent = 0;
  await new Promise<void>((resolve) => {
    const pump = (): void => {
      while (sent < limit && performance.now() < until) {
        const n = Math.min(chunk.length, limit - sent);
        sent += n;
        if (!s.write(n === chunk.length ? chunk : chunk.subarray(0, n))) { s.once('drain', pump); return; }
      }
      resolve();
    };
    pump();
  });
  s.end();
  const got = await done;
  const ms = performance.now() - t0;
  if (got !== sent) throw new Error(`bulk: sent ${sent} bytes, the server received ${got}`);
  return { bytes: sent, ms, mbitPerS: (sent * 8) / (ms * 1000) };
}

/** exit code of a client whose connection stalled (the bench retries such a round) */
export const STALL_EXIT_CODE = 3;
export const STALL_MESSAGE = 'connection stalled';

/**
 * Exits the process with STALL_EXIT_CODE when `s` receives nothing for `seconds` (a bulk
 * sender receives only the final count: give it its sending time on top). Returns the
 * function that disarms it.
 */
export function stallWatchdog(s: ByteStream, seconds: number, what: string): () => void {
  let progressAt = performance.now();
  s.on('data', () => { progressAt = performance.now(); });
  const t = setInterval(() => {
    if (performance.now() - progressAt < seconds * 1000) return;
    process.stderr.write(`${what}: ${STALL_MESSAGE} (no progress for ${seconds} s)\n`);
    process.exit(STALL_EXIT_CODE);
  }, 250);
  return () => clearInterval(t);
}
