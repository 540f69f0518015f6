// Deterministic content for the MPyC-like generator: every party can compute every byte
// any other party sends it, so the receiver checks the whole stream, not just lengths.
// A SHA-256 of (seed, label, sender, receiver, round) seeds xoshiro128** — fast enough to
// fill megabytes without hashing each block, and identical on every machine.
import { createHash } from 'node:crypto';

function seedWords(parts: (string | number)[]): [number, number, number, number] {
  const d = createHash('sha256').update(parts.join('/')).digest();
  const w: [number, number, number, number] = [d.readUInt32LE(0), d.readUInt32LE(4), d.readUInt32LE(8), d.readUInt32LE(12)];
  if ((w[0] | w[1] | w[2] | w[3]) === 0) w[0] = 1; // the all-zero state is a fixed point
  return w;
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** n pseudorandom bytes from the given label parts. */
export function streamBytes(n: number, parts: (string | number)[]): Buffer {
  const s = seedWords(parts);
  const out = Buffer.allocUnsafe(n);
  let i = 0;
  while (i < n) {
    const r = (Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9)) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] = (s[2] ^ s[0]) >>> 0;
    s[3] = (s[3] ^ s[1]) >>> 0;
    s[1] = (s[1] ^ s[2]) >>> 0;
    s[0] = (s[0] ^ s[3]) >>> 0;
    s[2] = (s[2] ^ t) >>> 0;
    s[3] = rotl(s[3], 11);
    if (n - i >= 4) { out.writeUInt32LE(r, i); i += 4; } else { while (i < n) { out[i++] = r & 0xff; } }
  }
  return out;
}

export type MessageKind = 'round' | 'bulk' | 'shutdown';

/**
 * The program counter of a message label. All parties derive the same value, as MPyC's
 * parties do from their shared program; a signed 64-bit number like MPyC's hash-based pc.
 */
export function programCounter(seed: string, kind: MessageKind, round: number): bigint {
  return createHash('sha256').update(`${seed}/pc/${kind}/${round}`).digest().readBigInt64LE(0);
}

export function roundPayload(seed: string, from: number, to: number, round: number, size: number): Buffer {
  return streamBytes(size, [seed, 'round', from, to, round]);
}

export function bulkPayload(seed: string, from: number, to: number, size: number): Buffer {
  return streamBytes(size, [seed, 'bulk', from, to]);
}

export function prssKey(seed: string, client: number, server: number, k: number): Buffer {
  return streamBytes(16, [seed, 'prss', client, server, k]);
}
