import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { encodePacket, parsePacket, type Frame } from '../../src/transport/wire.js';
import { Connection } from '../../src/transport/connection.js';

const u62 = fc.integer({ min: 0, max: 2 ** 40 });
const frameArb: fc.Arbitrary<Frame> = fc.oneof(
  fc.constant<Frame>({ type: 'ping' }),
  fc.record({ type: fc.constant('reset' as const), id: u62, code: u62, finalSize: u62 }),
  fc.record({ type: fc.constant('maxData' as const), max: u62 }),
  fc.record({ type: fc.constant('maxStreamData' as const), id: u62, max: u62 }),
  fc.record({ type: fc.constant('close' as const), code: u62, reason: fc.string({ maxLength: 50 }) }),
  fc.record({ type: fc.constant('stream' as const), id: u62, offset: u62, fin: fc.boolean(), data: fc.uint8Array({ maxLength: 300 }) }),
  fc.record({ type: fc.constant('stream' as const), id: u62, offset: u62, fin: fc.boolean(), target: fc.uint8Array({ maxLength: 64 }), data: fc.uint8Array({ maxLength: 300 }) }),
  fc.array(fc.tuple(fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 0, max: 1000 })), { minLength: 1, maxLength: 10 }).map((gl): Frame => {
    // build descending disjoint ranges from (gap, len) pairs
    let hi = 100_000;
    const ranges: Array<[number, number]> = [];
    for (const [g, l] of gl) { ranges.push([hi - l, hi]); hi = hi - l - g - 2; }
    return { type: 'ack', largest: 100_000, ackDelayUs: 123, ranges };
  }),
);

describe('transport wire codec', () => {
  it('round-trips every frame type', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffffffff }), u62, fc.array(frameArb, { minLength: 1, maxLength: 5 }), (src, dst, pn, frames) => {
      const pkt = encodePacket({ srcEpoch: src, dstEpoch: dst, pn }, frames);
      const back = parsePacket(pkt);
      expect(back).not.toBeNull();
      expect(back!.header).toEqual({ srcEpoch: src, dstEpoch: dst, pn });
      expect(back!.frames.map((f) => ({ ...f, ...(f.type === 'stream' ? { data: [...f.data], target: f.target && [...f.target] } : {}) }))).toEqual(
        frames.map((f) => ({ ...f, ...(f.type === 'stream' ? { data: [...f.data], target: f.target && [...f.target] } : {}) })),
      );
    }), { numRuns: 300 });
  });

  it('rejects garbage and truncations without throwing; a connection counts them', () => {
    const c = new Connection({ side: 0 }, 0);
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (junk) => {
      expect(() => parsePacket(junk)).not.toThrow();
      c.receive(junk, 1);
    }), { numRuns: 500 });
    const good = encodePacket({ srcEpoch: 5, dstEpoch: 0, pn: 1 }, [{ type: 'stream', id: 1, offset: 0, fin: true, target: new Uint8Array([9]), data: new Uint8Array(50) }]);
    for (let n = 0; n < good.length; n++) expect(parsePacket(good.subarray(0, n))).toBeNull();
    expect(c.stats().malformed).toBeGreaterThan(400);
  });
});
