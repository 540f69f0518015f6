// Fuzz suite of the transport packet/frame codec and the receive path (fast-check, seeded,
// reproducible): every frame round-trips; garbage, truncations and mutated real packets
// are typed drops, counted by reason, and never an exception inside the handler (a parser
// that threw would show as internalErrors, which must stay 0).
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import {
  encodePacket, parsePacket, MAX_ACK_RANGES_PARSED, MAX_CLOSE_REASON_BYTES, MAX_FRAMES_PER_PACKET, type Frame,
} from '../../src/transport/wire.js';
import { Connection } from '../../src/transport/connection.js';
import { DROP_REASONS, type ReceiveResult } from '../../src/transport/types.js';
import { SimPair } from '../../src/sim/harness.js';

const SEED = 0x5eed;
const u62 = fc.integer({ min: 0, max: 2 ** 40 });
const frameArb: fc.Arbitrary<Frame> = fc.oneof(
  fc.constant<Frame>({ type: 'ping' }),
  fc.record({ type: fc.constant('reset' as const), id: u62, code: u62, finalSize: u62 }),
  fc.record({ type: fc.constant('maxData' as const), max: u62 }),
  fc.record({ type: fc.constant('maxStreams' as const), max: u62 }),
  fc.record({ type: fc.constant('maxStreamData' as const), id: u62, max: u62 }),
  fc.record({ type: fc.constant('close' as const), code: u62, reason: fc.string({ maxLength: 50 }) }),
  fc.record({ type: fc.constant('stream' as const), id: u62, offset: u62, fin: fc.boolean(), data: fc.uint8Array({ maxLength: 300 }) }),
  fc.record({ type: fc.constant('stream' as const), id: u62, offset: u62, fin: fc.boolean(), target: fc.uint8Array({ maxLength: 64 }), data: fc.uint8Array({ maxLength: 300 }) }),
);
const ackArb: fc.Arbitrary<Frame> = fc
  .array(fc.tuple(fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 0, max: 1000 })), { minLength: 1, maxLength: 10 })
  .map((gl): Frame => {
    // descending disjoint ranges from (gap, len) pairs
    let hi = 100_000;
    const ranges: Array<[number, number]> = [];
    for (const [g, l] of gl) {
      ranges.push([hi - l, hi]);
      hi = hi - l - g - 2;
    }
    return { type: 'ack', largest: 100_000, ackDelayUs: 123, ranges };
  });
/** a packet: at most one ACK (first), other frames, PADDING last (it runs to the end) */
const framesArb = fc
  .tuple(fc.option(ackArb, { nil: undefined }), fc.array(frameArb, { maxLength: 5 }), fc.option(fc.integer({ min: 1, max: 40 }), { nil: undefined }))
  .filter(([a, fs, p]) => a !== undefined || fs.length > 0 || p !== undefined)
  .map(([a, fs, p]) => [...(a ? [a] : []), ...fs, ...(p ? [{ type: 'padding', length: p } as Frame] : [])]);

const plain = (fs: Frame[]) => fs.map((f) => (f.type === 'stream' ? { ...f, data: [...f.data], target: f.target && [...f.target] } : f));

describe('transport wire codec', () => {
  it('round-trips every frame type', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffffffff }), u62, framesArb, (src, dst, pn, frames) => {
        const back = parsePacket(encodePacket({ srcEpoch: src, dstEpoch: dst, pn }, frames));
        if (typeof back === 'string') throw new Error(back);
        expect(back.header).toEqual({ srcEpoch: src, dstEpoch: dst, pn });
        expect(plain(back.frames)).toEqual(plain(frames));
      }),
      { numRuns: 400, seed: SEED },
    );
  });

  it('every truncation of a valid packet is a typed parse error', () => {
    const good = encodePacket({ srcEpoch: 5, dstEpoch: 0, pn: 1 }, [{ type: 'stream', id: 1, offset: 0, fin: true, target: new Uint8Array([9]), data: new Uint8Array(50) }]);
    for (let n = 0; n < good.length; n++) expect(['bad_header', 'bad_frame', 'no_frames']).toContain(parsePacket(good.subarray(0, n)));
  });

  it('bounds peer-controlled counts: ACK ranges, ACK frames, frames per packet, CLOSE reason', () => {
    const h = { srcEpoch: 1, dstEpoch: 0, pn: 0 };
    const ranges = (n: number): Array<[number, number]> => Array.from({ length: n }, (_, i) => [10_000 - 3 * i, 10_000 - 3 * i] as [number, number]);
    expect(typeof parsePacket(encodePacket(h, [{ type: 'ack', largest: 10_000, ackDelayUs: 0, ranges: ranges(MAX_ACK_RANGES_PARSED + 1) }]))).toBe('object');
    expect(parsePacket(encodePacket(h, [{ type: 'ack', largest: 10_000, ackDelayUs: 0, ranges: ranges(MAX_ACK_RANGES_PARSED + 2) }]))).toBe('bad_frame');
    const ack: Frame = { type: 'ack', largest: 5, ackDelayUs: 0, ranges: [[0, 5]] };
    expect(parsePacket(encodePacket(h, [ack, { type: 'ping' }, ack]))).toBe('second_ack');
    const pings: Frame[] = Array.from({ length: MAX_FRAMES_PER_PACKET }, () => ({ type: 'ping' }));
    expect(typeof parsePacket(encodePacket(h, pings))).toBe('object');
    expect(parsePacket(encodePacket(h, [...pings, { type: 'ping' }]))).toBe('too_many_frames');
    // a long reason is cut when sent (to whole bytes: the decoder replaces a cut character)
    const long = parsePacket(encodePacket(h, [{ type: 'close', code: 1, reason: 'é'.repeat(300) }]));
    if (typeof long === 'string') throw new Error(long);
    const reason = long.frames[0]!.type === 'close' ? long.frames[0]!.reason : '';
    expect(new TextEncoder().encode(reason).length).toBeLessThanOrEqual(MAX_CLOSE_REASON_BYTES + 2);
    // and a longer one is refused when received
    const raw = encodePacket(h, [{ type: 'close', code: 1, reason: 'x'.repeat(MAX_CLOSE_REASON_BYTES) }]);
    const over = new Uint8Array(raw.length + 1);
    over.set(raw);
    over[raw.length - MAX_CLOSE_REASON_BYTES - 2] = 0x41; // reasonLen varint (2 bytes) → 257
    over[raw.length - MAX_CLOSE_REASON_BYTES - 1] = 0x01;
    expect(parsePacket(over)).toBe('bad_frame');
  });
});

/** real packets of a short exchange, to mutate */
function samplePackets(): Uint8Array[] {
  const sim = new SimPair(3, { ab: { delayMs: 5, loss: 0.05 }, ba: { delayMs: 5, loss: 0.05 } });
  const pkts: Uint8Array[] = [];
  const orig = sim.a.conn.poll.bind(sim.a.conn);
  sim.a.conn.poll = (now) => {
    const o = orig(now);
    for (const p of o) pkts.push(p.slice());
    return o;
  };
  sim.b.onEvents = (evs) => {
    for (const e of evs) if ('id' in e) while (sim.b.conn.read(e.id));
  };
  sim.at(0, () => {
    const id = sim.a.conn.openStream(new Uint8Array([1, 2, 3]));
    sim.a.conn.write(id, new Uint8Array(30_000).fill(7));
    sim.a.conn.finish(id);
  });
  sim.run(2000);
  return pkts;
}

describe('receive path under garbage (fast-check)', () => {
  const valid = new Set<string>(['ok', ...DROP_REASONS]);
  const check = (c: Connection, results: ReceiveResult[]) => {
    for (const r of results) expect(valid.has(r)).toBe(true);
    const s = c.stats();
    expect(s.internalErrors).toBe(0);
    expect(s.dropped.internal_error).toBe(0);
    const counted = Object.values(s.dropped).reduce((a, b) => a + b, 0);
    expect(counted).toBe(results.filter((r) => r !== 'ok').length);
    expect(c.checkInvariants()).toBeNull();
  };

  it('random bytes: each a typed, counted drop', () => {
    const c = new Connection({ side: 1, epoch: 0x0b }, 0);
    const results: ReceiveResult[] = [];
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (junk) => {
        results.push(c.receive(junk, 1));
      }),
      { numRuns: 2000, seed: SEED },
    );
    check(c, results);
    expect(c.stats().malformed).toBeGreaterThan(1500);
  });

  it('mutated real packets (bit flips, truncation, splices): typed drops or accepted, never an exception', () => {
    const pkts = samplePackets();
    expect(pkts.length).toBeGreaterThan(20);
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            i: fc.nat(pkts.length - 1),
            flips: fc.array(fc.tuple(fc.nat(2000), fc.integer({ min: 1, max: 255 })), { maxLength: 4 }),
            cut: fc.option(fc.nat(1300), { nil: undefined }),
          }),
          { minLength: 1, maxLength: 40 },
        ),
        (muts) => {
          const c = new Connection({ side: 1, epoch: 0x0b }, 0);
          const results: ReceiveResult[] = [];
          let now = 0;
          for (const m of muts) {
            const p = pkts[m.i]!.slice(0, m.cut);
            for (const [at, x] of m.flips) if (p.length) p[at % p.length]! ^= x;
            results.push(c.receive(p, (now += 1)));
            c.poll(now);
            if (c.closed) break;
          }
          check(c, results);
        },
      ),
      { numRuns: 300, seed: SEED },
    );
  });
});
