// The issue #4 item 8 figures, at CI-sized scale, held to their targets so they cannot
// silently regress (bench/transport-sim.ts measures them at full scale).
import { describe, it, expect } from 'vitest';
import { bulkGoodput, pathSwitch, pingPong } from '../../src/sim/measure.js';

describe('transport figures in the simulator', () => {
  it('(a) 100-byte ping-pong, 20 ms RTT, 2 % loss: p50 ≈ RTT, p99 ≤ 3 × RTT', () => {
    for (const seed of [1, 2]) {
      const r = pingPong({ seed, rounds: 1000 });
      expect(r.rounds).toBe(1000);
      expect(r.p50Ms).toBeLessThanOrEqual(21);
      expect(r.p99Ms).toBeLessThanOrEqual(60);
      expect(r.maxMs).toBeLessThan(200); // never a TCP-style 200 ms floor
    }
  });

  it('(b) bulk through a 100 Mbit/s, 20 ms bottleneck: ≥ 80 % of the link', () => {
    const r = bulkGoodput({ bytes: 12_000_000 });
    expect(r.intact).toBe(true);
    expect(r.goodputMbps).toBeGreaterThanOrEqual(80);
    expect(r.cwndViolations).toBe(0);
  });

  it('(c) path switch 40 ms → 10 ms mid-transfer: 0 bytes lost or duplicated, short stall', () => {
    for (const oldPathDies of [false, true]) {
      const r = pathSwitch({ bytes: 20_000_000, switchAtMs: 500, oldPathDies });
      expect(r.intact).toBe(true);
      expect(r.bytesLost).toBe(0);
      expect(r.bytesDuplicated).toBe(0);
      expect(r.stallMs).toBeLessThan(oldPathDies ? 100 : 50);
      expect(r.afterMbps).toBeGreaterThan(80);
    }
  });
});
