// The replay window against a simple model: a Set of every accepted counter plus the
// rule "older than highest - window is too old". fast-check drives random sequences
// with reordering, duplicates and big jumps, including counters near the 2^53 bound
// where the ring index can no longer come from 32-bit shifts.
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { REPLAY_WINDOW_SIZE, ReplayWindow } from '../../src/session/replay-window.js';
import { MAX_COUNTER } from '../../src/noise/index.js';

function model(seq: number[]): string[] {
  const seen = new Set<number>();
  let top = -1;
  return seq.map((c) => {
    if (!Number.isSafeInteger(c) || c < 0) return 'out_of_range';
    if (c <= top && top - c >= REPLAY_WINDOW_SIZE) return 'too_old';
    if (seen.has(c)) return 'replayed';
    seen.add(c);
    if (c > top) top = c;
    return 'ok';
  });
}

describe('ReplayWindow', () => {
  it('is at least 2048 packets wide', () => {
    expect(REPLAY_WINDOW_SIZE).toBeGreaterThanOrEqual(2048);
  });

  it('matches the model on random sequences (reordering, duplicates, jumps, the 2^32 and 2^53 edges)', () => {
    const counter = fc.oneof(
      fc.integer({ min: 0, max: 300 }),
      fc.integer({ min: 0, max: 20_000 }),
      fc.integer({ min: 2 ** 32 - 5000, max: 2 ** 32 + 5000 }),
      fc.integer({ min: MAX_COUNTER - 6000, max: MAX_COUNTER }),
      fc.constantFrom(-1, MAX_COUNTER + 1, 2 ** 64, 0.5, NaN, Infinity),
    );
    fc.assert(fc.property(fc.array(counter, { maxLength: 400 }), (seq) => {
      const w = new ReplayWindow();
      expect(seq.map((c) => w.accept(c))).toEqual(model(seq));
    }), { numRuns: 300, seed: 0x5e55 });
  });

  it('in-window reordering is accepted exactly once; replay and beyond-window are rejected', () => {
    const w = new ReplayWindow();
    const order = Array.from({ length: 3000 }, (_, i) => i);
    // shuffle within blocks of 1000 (well inside the window)
    for (let b = 0; b < 3000; b += 1000) order.slice(b, b + 1000).reverse().forEach((c, i) => { order[b + i] = c; });
    for (const c of order) expect(w.accept(c)).toBe('ok');
    for (const c of order.slice(-100)) expect(w.accept(c)).toBe('replayed');
    expect(w.accept(10_000)).toBe('ok');
    expect(w.accept(10_000 - REPLAY_WINDOW_SIZE)).toBe('too_old');
    expect(w.accept(10_000 - REPLAY_WINDOW_SIZE + 1)).toBe('ok');
    expect(w.accept(-1)).toBe('out_of_range');
    expect(w.accept(MAX_COUNTER + 1)).toBe('out_of_range');
  });

  it('check() never changes state', () => {
    const w = new ReplayWindow();
    expect(w.check(5)).toBe('ok');
    expect(w.check(5)).toBe('ok');
    expect(w.highest).toBe(-1);
    expect(w.accept(5)).toBe('ok');
    expect(w.check(5)).toBe('replayed');
  });
});
