// Token buckets and the bounded tables of the initiation guard, on a fake clock.
import { describe, it, expect } from 'vitest';
import { SourceBuckets, TokenBucket } from '../../src/session/rate-limit.js';
import { RecentSet } from '../../src/session/recent-set.js';

describe('TokenBucket', () => {
  it('lets a burst through, then the rate', () => {
    const b = new TokenBucket({ perSecond: 10, burst: 5 }, 0);
    let passed = 0;
    for (let i = 0; i < 20; i++) if (b.take(0)) passed++;
    expect(passed).toBe(5);
    expect(b.take(99)).toBe(false); // 0.99 tokens
    expect(b.take(100)).toBe(true); // 1 token after 1/rate
    expect(b.take(100)).toBe(false);
    // 10 s at 1000 attempts per second: 100 pass (the rate), give or take one
    passed = 0;
    for (let t = 101; t < 10_101; t++) if (b.take(t)) passed++;
    expect(passed).toBeGreaterThanOrEqual(99);
    expect(passed).toBeLessThanOrEqual(101);
  });

  it('never holds more than its burst, however long it was idle, and ignores a clock going back', () => {
    const b = new TokenBucket({ perSecond: 1000, burst: 3 }, 0);
    let passed = 0;
    for (let i = 0; i < 10; i++) if (b.take(1e9)) passed++;
    expect(passed).toBe(3);
    expect(b.take(0)).toBe(false);
  });
});

describe('SourceBuckets', () => {
  it('keeps sources apart', () => {
    const s = new SourceBuckets({ perSecond: 1, burst: 2 }, 100);
    expect([s.take('a', 0), s.take('a', 0), s.take('a', 0)]).toEqual([true, true, false]);
    expect([s.take('b', 0), s.take('b', 0), s.take('b', 0)]).toEqual([true, true, false]);
  });

  it('holds at most maxSources; the least recently used is forgotten (and starts full again)', () => {
    const s = new SourceBuckets({ perSecond: 1, burst: 1 }, 3);
    for (const k of ['a', 'b', 'c']) expect(s.take(k, 0)).toBe(true);
    expect(s.take('a', 0)).toBe(false); // a is now the most recently used
    expect(s.take('d', 0)).toBe(true); // evicts b
    expect(s.size).toBe(3);
    expect(s.take('c', 0)).toBe(false); // still tracked
    expect(s.take('b', 0)).toBe(true); // forgotten: full again
    for (let i = 0; i < 10_000; i++) s.take(`spoofed-${i}`, 0);
    expect(s.size).toBe(3);
  });
});

describe('RecentSet', () => {
  it('forgets the oldest first and never exceeds its capacity', () => {
    const r = new RecentSet(3);
    for (const k of ['a', 'b', 'c', 'a', 'd']) r.add(k); // re-adding 'a' does not refresh it
    expect(['a', 'b', 'c', 'd'].map((k) => r.has(k))).toEqual([false, true, true, true]);
    expect(r.size).toBe(3);
    expect(() => new RecentSet(0)).toThrow(RangeError);
  });
});
