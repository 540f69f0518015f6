// TAI64N timestamps for the initiation payload (12 bytes, big-endian so that a bytewise
// comparison orders them): 8 bytes of 2^62 + seconds, 4 bytes of nanoseconds. Taken from
// the wall clock so they keep increasing across an agent restart; a responder accepts an
// initiation only if its timestamp is larger than the last one accepted from that peer.
import { TIMESTAMP_LEN } from './wire.js';

const TAI64_BASE = 1n << 62n;

export function encodeTai64n(epochMs: number): Uint8Array {
  return encodeTai64nNs(BigInt(Math.floor(epochMs)) * 1_000_000n);
}

export function encodeTai64nNs(epochNs: bigint): Uint8Array {
  const out = new Uint8Array(TIMESTAMP_LEN);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, TAI64_BASE + epochNs / 1_000_000_000n, false);
  dv.setUint32(8, Number(epochNs % 1_000_000_000n), false);
  return out;
}

/** −1, 0 or 1 as a < b, a = b, a > b (bytewise). */
export function compareTimestamps(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < TIMESTAMP_LEN; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

/**
 * A clock of strictly increasing timestamps: the wall clock, but never equal to or below
 * the previous value even if the wall clock steps back or two initiations share one
 * millisecond.
 */
export class MonotonicTai64n {
  private lastNs = -1n;
  constructor(private readonly wallClockMs: () => number = Date.now) {}

  next(): Uint8Array {
    let ns = BigInt(Math.floor(this.wallClockMs())) * 1_000_000n;
    if (ns <= this.lastNs) ns = this.lastNs + 1n; // one nanosecond later
    this.lastNs = ns;
    return encodeTai64nNs(ns);
  }
}
