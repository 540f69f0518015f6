// The replay window against a simple model: a Set of every accepted counter plus the
// rule "older than highest - window is too old". fast-check drives random sequences
// with reordering, duplicates and big jumps.
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { REPLAY_WINDOW_SIZE, ReplayWindow, COUNTER_LIMIT } from '../../src/session/replay-window.js';

function model(seq: bigint[]): string[] {
  const seen = new Set<bigint>();
  let top = -1n;
  return seq.map((c) => {
    if (c < 0n || c >= COUNTER_LIMIT) return 'out_of_range';
    if (c <= top && top - c >= BigInt(REPLAY_WINDOW_SIZE)) return 'too_old';
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

  it('matches the model on random sequences (reordering, duplicates, jumps)', () => {
    const counter = fc.oneof(
      fc.bigInt({ min: 0n, max: 300n }),
      fc.bigInt({ min: 0n, max: 20_000n }),
      fc.bigInt({ min: (1n << 64n) - 5n, max: (1n << 64n) + 5n }),
    );
    fc.assert(fc.property(fc.array(counter, { maxLength: 400 }), (seq) => {
      const w = new ReplayWindow();
      expect(seq.map((c) => w.accept(c))).toEqual(model(seq));
    }), { numRuns: 300 });
  });

  it('in-window reordering is accepted exactly once; replay and beyond-window are rejected', () => {
    const w = new ReplayWindow();
    const order = Array.from({ length: 3000 }, (_, i) => BigInt(i));
    // shuffle within blocks of 1000 (well inside the window)
    for (let b = 0; b < 3000; b += 1000) order.slice(b, b + 1000).reverse().forEach((c, i) => { order[b + i] = c; });
    for (const c of order) expect(w.accept(c)).toBe('ok');
    for (const c of order.slice(-100)) expect(w.accept(c)).toBe('replayed');
    expect(w.accept(10_000n)).toBe('ok');
    expect(w.accept(10_000n - BigInt(REPLAY_WINDOW_SIZE))).toBe('too_old');
    expect(w.accept(10_000n - BigInt(REPLAY_WINDOW_SIZE) + 1n)).toBe('ok');
    expect(w.accept(-1n)).toBe('out_of_range');
  });

  it('check() never changes state', () => {
    const w = new ReplayWindow();
    expect(w.check(5n)).toBe('ok');
    expect(w.check(5n)).toBe('ok');
    expect(w.highest).toBe(-1n);
    expect(w.accept(5n)).toBe('ok');
    expect(w.check(5n)).toBe('replayed');
  });
});
