// Regression: transfers ≥ 2 MB at 2 % loss used to stall for good. A late ACK for the
// original copy of a spuriously retransmitted range re-added bytes below SendSide.base to
// its `acked` set; that stale range sat in front of the one starting at base, so base
// never advanced again, the send buffer stayed full and write() never got room back.
import { describe, it, expect } from 'vitest';
import { runScenario } from './scenario.js';
import { SendSide } from '../../src/transport/stream.js';

describe('large transfer at 2 % loss with reordering (stall regression)', () => {
  // seeds 1, 2 and 5 stalled at ~2.1 MB before the fix; 3 and 4 completed
  for (const seed of [1, 2, 3, 4, 5]) {
    it(`3 MB, 2 % loss, 5 ms jitter, seed ${seed}: all bytes, in order, in bounded time`, () => {
      const r = runScenario(seed, { delayMs: 10, jitterMs: 5, loss: 0.02 }, [{ sizes: [3_000_000], finAfter: true }]);
      expect(r.allDone).toBe(true);
      for (const [id, d] of r.expected) expect(Buffer.from(Uint8Array.from(r.received.get(id) ?? [])).equals(Buffer.from(d))).toBe(true);
      // ~16 s of virtual time at this loss rate; a stall would run into the 120 s limit
      expect(r.end).toBeLessThan(40_000);
      expect(r.sim.a.conn.stats().packetsLost).toBeGreaterThan(20);
    });
  }
});

describe('SendSide acknowledgement bookkeeping', () => {
  it('a late ACK below base does not block base from advancing', () => {
    const s = new SendSide(null);
    s.push(new Uint8Array(3000));
    s.sent = 3000;
    s.onAcked(0, 1000);
    expect(s.base).toBe(1000);
    s.onAcked(200, 900); // late duplicate ACK, entirely below base and not touching it
    s.onAcked(1000, 1200); // the range that starts exactly at base
    expect(s.base).toBe(1200);
    s.onAcked(900, 1500); // overlaps base
    expect(s.base).toBe(1500);
    s.onAcked(2000, 3000);
    expect(s.base).toBe(1500);
    s.onAcked(1500, 2000);
    expect(s.base).toBe(3000);
    expect(s.acked.length).toBe(0);
    expect(s.buffered).toBe(0);
  });

  it('in-order ACKs advance base without touching the acked set, dropping whole and partial chunks', () => {
    const s = new SendSide(null);
    const a = Uint8Array.from([1, 2, 3, 4]), b = Uint8Array.from([5, 6, 7, 8]);
    s.push(a);
    s.push(b);
    s.sent = 8;
    s.onLost(0, 8); // all of it declared lost, then acked after all (a spurious loss)
    s.onAcked(0, 3); // in order, mid-chunk
    expect(s.base).toBe(3);
    expect(s.acked.length).toBe(0);
    expect(s.lost.r).toEqual([[3, 8]]);
    expect(s.chunks.map((c) => [...c])).toEqual([[4], [5, 6, 7, 8]]);
    s.onAcked(3, 6); // across the chunk boundary
    expect(s.base).toBe(6);
    expect(s.chunks.map((c) => [...c])).toEqual([[7, 8]]);
    const dst = new Uint8Array(2);
    s.copy(6, 8, dst, 0); // what is left is still the right bytes
    expect([...dst]).toEqual([7, 8]);
    s.onAcked(6, 8);
    expect(s.base).toBe(8);
    expect(s.buffered).toBe(0);
    expect(s.chunks).toEqual([]);
    expect(s.lost.length).toBe(0);
  });

  it('an in-order ACK after an out-of-order one also takes the acked range above it', () => {
    const s = new SendSide(null);
    s.push(new Uint8Array(3000));
    s.sent = 3000;
    s.onAcked(2000, 3000); // out of order: kept in the acked set
    expect(s.base).toBe(0);
    s.onAcked(0, 2000); // starts at base, but the acked set is not empty: merged, base jumps to 3000
    expect(s.base).toBe(3000);
    expect(s.acked.length).toBe(0);
    expect(s.chunks).toEqual([]);
  });

  it('an out-of-order ACK of bytes declared lost takes them off the lost set (no spurious re-send)', () => {
    const s = new SendSide(null);
    s.push(new Uint8Array(3000));
    s.sent = 3000;
    s.onLost(0, 3000); // every byte declared lost
    s.onAcked(1000, 2000); // then a copy of the middle arrives after all: base stays at 0
    expect(s.base).toBe(0);
    expect(s.lost.r).toEqual([[0, 1000], [2000, 3000]]);
    s.onAcked(2500, 3500); // partly beyond what was lost
    expect(s.lost.r).toEqual([[0, 1000], [2000, 2500]]);
    s.onAcked(0, 1000); // base reaches the acked range: lost keeps only [2000, 2500)
    expect(s.base).toBe(2000);
    expect(s.lost.r).toEqual([[2000, 2500]]);
  });

  it('onLost only records unacknowledged bytes at or above base', () => {
    const s = new SendSide(null);
    s.push(new Uint8Array(5000));
    s.onAcked(0, 1000);
    s.onAcked(2000, 3000);
    s.onLost(0, 4000);
    expect(s.lost.r).toEqual([[1000, 2000], [3000, 4000]]);
  });
});
