// The deterministic network simulator itself: each impairment does what its config says.
import { describe, it, expect } from 'vitest';
import { EventQueue, Link, prng, type LinkConfig } from '../../src/sim/network.js';

/** sends `n` packets of `size` bytes every `gapMs` through a fresh link; returns arrivals */
function drive(cfg: LinkConfig, n: number, size = 1000, gapMs = 1, seed = 1) {
  const q = new EventQueue();
  const link = new Link(cfg, prng(seed), q);
  const arrivals: Array<{ t: number; id: number }> = [];
  for (let i = 0; i < n; i++) {
    const pkt = new Uint8Array(size);
    pkt[0] = i & 0xff;
    pkt[1] = i >> 8;
    q.push(i * gapMs, () => link.send(i * gapMs, pkt, (p, t) => arrivals.push({ t, id: p[0]! | (p[1]! << 8) })));
  }
  while (q.size) q.pop()!.fn();
  return { link, arrivals };
}

describe('simulator: PRNG and event queue', () => {
  it('prng is deterministic per seed and uniform enough', () => {
    const a = prng(42);
    const b = prng(42);
    const xs = Array.from({ length: 10_000 }, () => a());
    expect(Array.from({ length: 10_000 }, () => b())).toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.02);
    expect(prng(43)()).not.toBe(prng(42)());
  });

  it('event queue pops in time order, FIFO for equal times', () => {
    const q = new EventQueue();
    const out: string[] = [];
    for (const [t, s] of [[5, 'a'], [1, 'b'], [5, 'c'], [0, 'd'], [1, 'e']] as const) q.push(t, () => out.push(s));
    while (q.size) q.pop()!.fn();
    expect(out).toEqual(['d', 'b', 'e', 'a', 'c']);
  });
});

describe('simulator: link impairments', () => {
  it('delay only: every packet arrives after exactly the delay, in order', () => {
    const { arrivals } = drive({ delayMs: 20 }, 100);
    expect(arrivals.map((a) => a.id)).toEqual([...Array(100).keys()]);
    arrivals.forEach((a, i) => expect(a.t).toBe(i + 20));
  });

  it('random loss drops about the configured fraction', () => {
    const { link, arrivals } = drive({ delayMs: 1, loss: 0.1 }, 10_000);
    expect(arrivals.length + link.stats.lost).toBe(10_000);
    expect(link.stats.lost / 10_000).toBeGreaterThan(0.08);
    expect(link.stats.lost / 10_000).toBeLessThan(0.12);
  });

  it('Gilbert-Elliott loss comes in bursts', () => {
    const { arrivals } = drive({ delayMs: 1, burst: { pGoodToBad: 0.01, pBadToGood: 0.2, lossInBad: 1 } }, 20_000);
    const got = new Set(arrivals.map((a) => a.id));
    let runs = 0;
    let lost = 0;
    for (let i = 0; i < 20_000; i++) {
      if (!got.has(i)) {
        lost++;
        if (got.has(i - 1) || i === 0) runs++;
      }
    }
    // stationary bad fraction 0.01/(0.01+0.2) ≈ 4.8 %, mean burst length 1/0.2 = 5
    expect(lost / 20_000).toBeGreaterThan(0.03);
    expect(lost / 20_000).toBeLessThan(0.07);
    expect(lost / runs).toBeGreaterThan(3.5);
  });

  it('duplication delivers some packets twice', () => {
    const { link, arrivals } = drive({ delayMs: 1, duplicate: 0.05 }, 5000);
    expect(arrivals.length).toBe(5000 + link.stats.duplicated);
    expect(link.stats.duplicated).toBeGreaterThan(150);
    expect(link.stats.duplicated).toBeLessThan(350);
  });

  it('jitter reorders packets within the jitter bound', () => {
    const { arrivals } = drive({ delayMs: 10, jitterMs: 5 }, 1000, 1000, 0.5);
    const ids = arrivals.map((a) => a.id);
    expect(ids).not.toEqual([...Array(1000).keys()]);
    for (const a of arrivals) {
      const sentAt = a.id * 0.5;
      expect(a.t - sentAt).toBeGreaterThanOrEqual(10);
      expect(a.t - sentAt).toBeLessThan(15);
    }
  });

  it('a bottleneck serialises at its rate and drops beyond its queue (drop-tail)', () => {
    // 1000-byte packets offered at 2 per ms into 500 bytes/ms with a 20 kB queue
    const { link, arrivals } = drive({ delayMs: 5, rateBytesPerMs: 500, queueBytes: 20_000 }, 2000, 1000, 0.5);
    expect(link.stats.queueDropped).toBeGreaterThan(900);
    const ts = arrivals.map((a) => a.t);
    for (let i = 1; i < ts.length; i++) expect(ts[i]! - ts[i - 1]!).toBeGreaterThanOrEqual(2 - 1e-9);
    // rate: ~one packet per 2 ms once the queue is full
    const span = ts[ts.length - 1]! - ts[0]!;
    expect((arrivals.length - 1) * 1000 / span).toBeCloseTo(500, 0);
    // queueing delay never exceeds queue / rate
    for (const a of arrivals) expect(a.t - a.id * 0.5).toBeLessThanOrEqual(5 + 20_000 / 500 + 2);
  });

  it('a blackhole drops everything sent inside its window only', () => {
    const q = new EventQueue();
    const link = new Link({ delayMs: 1 }, prng(3), q);
    link.blackhole(100, 200);
    const got: number[] = [];
    for (let i = 0; i < 300; i++) q.push(i, () => link.send(i, new Uint8Array([i & 0xff, i >> 8]), (p) => got.push(p[0]! | (p[1]! << 8))));
    while (q.size) q.pop()!.fn();
    expect(link.stats.blackholed).toBe(100);
    expect(got).toEqual([...Array(100).keys(), ...Array.from({ length: 100 }, (_, i) => 200 + i)]);
  });

  it('same seed, same config ⇒ identical arrivals', () => {
    const cfg: LinkConfig = { delayMs: 7, jitterMs: 4, loss: 0.05, duplicate: 0.03, burst: { pGoodToBad: 0.02, pBadToGood: 0.3, lossInBad: 0.8 }, rateBytesPerMs: 800, queueBytes: 30_000 };
    expect(drive(cfg, 3000, 700, 0.5, 9).arrivals).toEqual(drive(cfg, 3000, 700, 0.5, 9).arrivals);
    expect(drive(cfg, 3000, 700, 0.5, 10).arrivals).not.toEqual(drive(cfg, 3000, 700, 0.5, 9).arrivals);
  });
});
