// Property tests of the transport under the simulator's impairments (issue #4, item 7):
// for random write patterns (sizes, timing, half-closes, many concurrent streams opened by
// both sides) every stream delivers exactly the bytes written, in order, and completes in
// bounded virtual time; every Connection's invariants hold after every poll (bytes in flight
// ≤ cwnd and equal to what is tracked, credit never exceeded); same seed ⇒ same trace.
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { runWorkload, type DirectionPlan, type Impairments, type StreamPlan } from './workload.js';
import type { LinkConfig } from '../../src/sim/network.js';

/** TRANSPORT_SOAK=n multiplies the run counts (a local soak; CI uses the defaults) */
const SOAK = Math.max(1, Number(process.env.TRANSPORT_SOAK ?? 1) || 1);

const linkArb: fc.Arbitrary<LinkConfig> = fc.record(
  {
    delayMs: fc.integer({ min: 1, max: 60 }),
    jitterMs: fc.integer({ min: 0, max: 15 }),
    loss: fc.double({ min: 0, max: 0.1, noNaN: true }),
    burst: fc.record({
      pGoodToBad: fc.double({ min: 0.001, max: 0.05, noNaN: true }),
      pBadToGood: fc.double({ min: 0.3, max: 0.8, noNaN: true }),
      lossInBad: fc.double({ min: 0.3, max: 1, noNaN: true }),
    }),
    duplicate: fc.double({ min: 0, max: 0.05, noNaN: true }),
    rateBytesPerMs: fc.integer({ min: 250, max: 12_500 }),
    queueBytes: fc.integer({ min: 15_000, max: 300_000 }),
  },
  { requiredKeys: ['delayMs'] },
);

const impArb: fc.Arbitrary<Impairments> = fc.record(
  {
    ab: linkArb,
    ba: linkArb,
    blackhole: fc.record({ from: fc.integer({ min: 0, max: 3000 }), lengthMs: fc.integer({ min: 10, max: 3000 }) }),
    pathSwitch: fc.record({ at: fc.integer({ min: 0, max: 3000 }), abDelayMs: fc.integer({ min: 1, max: 60 }), baDelayMs: fc.integer({ min: 1, max: 60 }) }),
  },
  { requiredKeys: ['ab', 'ba'] },
);

const dirArb: fc.Arbitrary<DirectionPlan> = fc.record({
  writes: fc.array(fc.record({ at: fc.integer({ min: 0, max: 2000 }), size: fc.oneof(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 40_000 })) }), { maxLength: 5 }),
  fin: fc.boolean(),
});

const streamArb: fc.Arbitrary<StreamPlan> = fc.record({
  opener: fc.constantFrom('a' as const, 'b' as const),
  openAt: fc.integer({ min: 0, max: 1500 }),
  fwd: dirArb,
  back: dirArb,
});

/** the generous bound on completion: the latest scripted event + blackhole + recovery slack */
function bound(imp: Impairments, plans: StreamPlan[]): number {
  let last = 0;
  for (const p of plans) for (const w of [...p.fwd.writes, ...p.back.writes]) last = Math.max(last, w.at);
  return last + 2000 + (imp.blackhole ? imp.blackhole.from + 2 * imp.blackhole.lengthMs : 0) + 30_000;
}

function check(seed: number, imp: Impairments, plans: StreamPlan[]): void {
  const r = runWorkload(seed, imp, plans);
  expect(r.problem).toBeNull();
  expect(r.mismatches).toEqual([]);
  expect(r.complete).toBe(true);
  expect(r.end).toBeLessThan(bound(imp, plans));
  expect(r.stats.a.cwndViolations + r.stats.b.cwndViolations).toBe(0);
}

describe('transport under random impairments (fast-check)', () => {
  it('many streams, both directions, half-closes, random timing: exact bytes in order, bounded time, invariants', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 31 - 1 }), impArb, fc.array(streamArb, { minLength: 1, maxLength: 8 }), check),
      { numRuns: 60 * SOAK, endOnFailure: true },
    );
  });

  it('one bulk stream through a bottleneck with a finite queue and bursty loss', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 2 ** 31 - 1 }),
        fc.integer({ min: 2, max: 40 }),
        fc.integer({ min: 500, max: 5000 }),
        fc.integer({ min: 20_000, max: 200_000 }),
        (seed, delayMs, rate, queue) => {
          const link: LinkConfig = { delayMs, rateBytesPerMs: rate, queueBytes: queue, burst: { pGoodToBad: 0.01, pBadToGood: 0.3, lossInBad: 0.7 } };
          check(seed, { ab: link, ba: { delayMs } }, [{ opener: 'a', openAt: 0, fwd: { writes: [{ at: 0, size: 400_000 }], fin: true }, back: { writes: [], fin: true } }]);
        },
      ),
      { numRuns: 8 * SOAK, endOnFailure: true },
    );
  });

  it('every stream completes in bounded virtual time at 2 % loss with reordering (many seeds)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 31 - 1 }), fc.integer({ min: 0, max: 8 }), (seed, jitterMs) => {
        const link: LinkConfig = { delayMs: 10, jitterMs, loss: 0.02 };
        const plans: StreamPlan[] = [
          { opener: 'a', openAt: 0, fwd: { writes: [{ at: 0, size: 600_000 }], fin: true }, back: { writes: [{ at: 5, size: 100 }], fin: true } },
          { opener: 'b', openAt: 3, fwd: { writes: [{ at: 3, size: 100 }, { at: 400, size: 100 }], fin: true }, back: { writes: [{ at: 50, size: 100 }], fin: false } },
        ];
        const r = runWorkload(seed, { ab: link, ba: link }, plans);
        expect(r.problem).toBeNull();
        expect(r.mismatches).toEqual([]);
        expect(r.complete).toBe(true);
        expect(r.end).toBeLessThan(20_000);
      }),
      { numRuns: 25 * SOAK, endOnFailure: true },
    );
  });

  it('same seed gives the same trace; another seed a different one', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 31 - 2 }), impArb, fc.array(streamArb, { minLength: 1, maxLength: 4 }), (seed, imp, plans) => {
        const t1 = runWorkload(seed, imp, plans, { keepTrace: true }).sim.trace;
        const t2 = runWorkload(seed, imp, plans, { keepTrace: true }).sim.trace;
        expect(t2).toEqual(t1);
      }),
      { numRuns: 10 * SOAK },
    );
    const link: LinkConfig = { delayMs: 10, jitterMs: 5, loss: 0.05, duplicate: 0.02 };
    const plans: StreamPlan[] = [{ opener: 'a', openAt: 0, fwd: { writes: [{ at: 0, size: 50_000 }], fin: true }, back: { writes: [], fin: true } }];
    const t1 = runWorkload(7, { ab: link, ba: link }, plans, { keepTrace: true }).sim.trace;
    const t3 = runWorkload(8, { ab: link, ba: link }, plans, { keepTrace: true }).sim.trace;
    expect(t1.length).toBeGreaterThan(10);
    expect(t3).not.toEqual(t1);
  });
});

// Counterexamples the random test found, kept as literals (a fast-check seed and path
// replay only while the generators stay exactly as they are), shrunk by hand to what still
// fails without the fix.
describe('counterexamples found by the random test', () => {
  it('seed -702767255 path "13": a FIN acknowledged while marked lost no longer busy-loops its sender', () => {
    // b's FIN on a stream a kept open was declared lost, then acknowledged before the
    // re-send left; the stale "FIN lost" flag kept b's pacing deadline in the past for good.
    // The simulator then spent its event budget on b's timer, 1 µs at a time, and a's four
    // streams stopped at ~31.5 KB (blackhole from 2991 ms, bursty loss both ways).
    const imp: Impairments = {
      ab: { delayMs: 10, jitterMs: 4, loss: 0.09999999999999992, burst: { pGoodToBad: 0.020247400736988233, pBadToGood: 0.3, lossInBad: 0.999999999999999 }, duplicate: 4.0467813666994933e-199, rateBytesPerMs: 4478 },
      ba: { delayMs: 35, jitterMs: 11, burst: { pGoodToBad: 0.04999999999999999, pBadToGood: 0.30000000000000004, lossInBad: 0.49334029723216355 }, rateBytesPerMs: 2048 },
      blackhole: { from: 2991, lengthMs: 2995 },
    };
    const plans: StreamPlan[] = [
      { opener: 'a', openAt: 566, fwd: { writes: [], fin: false }, back: { writes: [{ at: 826, size: 419 }], fin: true } },
      { opener: 'b', openAt: 1038, fwd: { writes: [], fin: true }, back: { writes: [], fin: true } },
      { opener: 'b', openAt: 580, fwd: { writes: [{ at: 1655, size: 11924 }, { at: 188, size: 37 }, { at: 1374, size: 7155 }], fin: true }, back: { writes: [{ at: 270, size: 33234 }, { at: 541, size: 6654 }], fin: true } },
      { opener: 'b', openAt: 1294, fwd: { writes: [{ at: 550, size: 39754 }], fin: false }, back: { writes: [], fin: true } },
      { opener: 'a', openAt: 1033, fwd: { writes: [{ at: 391, size: 26490 }, { at: 1325, size: 32071 }, { at: 1439, size: 24422 }], fin: false }, back: { writes: [{ at: 627, size: 12823 }, { at: 1353, size: 7813 }], fin: true } },
    ];
    check(64337275, imp, plans);
  });
});
