import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { runScenario } from './scenario.js';
import type { LinkConfig } from '../../src/sim/network.js';

const linkArb = fc.record({
  delayMs: fc.integer({ min: 1, max: 40 }),
  jitterMs: fc.integer({ min: 0, max: 20 }),
  loss: fc.double({ min: 0, max: 0.15, noNaN: true }),
  duplicate: fc.double({ min: 0, max: 0.05, noNaN: true }),
});
const planArb = fc.record({ sizes: fc.array(fc.integer({ min: 0, max: 20_000 }), { minLength: 0, maxLength: 6 }), finAfter: fc.boolean() });

describe('transport under random impairments', () => {
  it('every stream delivers exactly the bytes written, in order, in bounded time', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1e9 }), linkArb, fc.array(planArb, { minLength: 1, maxLength: 5 }), fc.option(fc.integer({ min: 5, max: 500 }), { nil: undefined }), (seed, link, plans, sw) => {
        const r = runScenario(seed, link, plans, sw);
        expect(r.allDone).toBe(true);
        for (const [id, d] of r.expected) expect(Uint8Array.from(r.received.get(id) ?? [])).toEqual(d);
        expect(r.end).toBeLessThan(120_000);
      }),
      { numRuns: 40, endOnFailure: true },
    );
  });

  it('bursty (Gilbert-Elliott) loss with a bottleneck and a blackhole still delivers', () => {
    const link: LinkConfig = { delayMs: 15, burst: { pGoodToBad: 0.02, pBadToGood: 0.3, lossInBad: 0.8 }, rateBytesPerMs: 2000, queueBytes: 60_000 };
    const r = runScenario(42, link, [{ sizes: [200_000], finAfter: true }, { sizes: [100, 100, 100], finAfter: true }]);
    expect(r.allDone).toBe(true);
    for (const [id, d] of r.expected) expect(Uint8Array.from(r.received.get(id) ?? [])).toEqual(d);
  });

  it('same seed gives the same trace', () => {
    const link: LinkConfig = { delayMs: 10, jitterMs: 5, loss: 0.05, duplicate: 0.02 };
    const t1 = runScenario(7, link, [{ sizes: [50_000], finAfter: true }], 100, true).sim.trace;
    const t2 = runScenario(7, link, [{ sizes: [50_000], finAfter: true }], 100, true).sim.trace;
    expect(t1.length).toBeGreaterThan(10);
    expect(t2).toEqual(t1);
    const t3 = runScenario(8, link, [{ sizes: [50_000], finAfter: true }], 100, true).sim.trace;
    expect(t3).not.toEqual(t1);
  });
});
