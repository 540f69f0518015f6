// Tail duplication (src/transport/tail-dup.ts) in the simulator: request/response rounds
// (an MPC round: each side sends a small message and waits for the other's) over a 20 ms
// RTT path. With 2 % loss each way the copies cut the round's tail (a lost message costs
// ~srtt/8 instead of a probe timeout); every byte still arrives exactly once in order; a
// lossless path never sends a copy.
import { describe, it, expect } from 'vitest';
import { SimPair } from '../../src/sim/harness.js';
import { TailDuplicator, DUP_MAX_FLIGHT_BYTES, LOSSY_FOR_MS } from '../../src/transport/tail-dup.js';
import type { LinkConfig } from '../../src/sim/network.js';

const MSG = 48;
const ROUNDS = 600;

/** ROUNDS rounds: both sides write MSG bytes, a round ends when both have read the other's; round times in ms */
function rounds(seed: number, link: LinkConfig, duplicate: boolean): { times: number[]; sim: SimPair; intact: boolean } {
  const sim = new SimPair(seed, { ab: link, ba: link }, { duplicateTailsWhenLossy: duplicate });
  const got = { a: 0, b: 0 };
  const bytes = { a: [] as number[], b: [] as number[] };
  let id = -1;
  let round = 0;
  let roundStart = 0;
  const times: number[] = [];
  const payload = (r: number, from: 'a' | 'b'): Uint8Array => new Uint8Array(MSG).fill((r * 2 + (from === 'a' ? 0 : 1)) & 0xff);
  const send = (t: number): void => {
    roundStart = t;
    sim.a.conn.write(id, payload(round, 'a'));
    sim.b.conn.write(id, payload(round, 'b'));
  };
  const onRead = (side: 'a' | 'b', t: number): void => {
    const c = side === 'a' ? sim.a.conn : sim.b.conn;
    let chunk;
    while ((chunk = c.read(id))) { got[side] += chunk.length; bytes[side].push(...chunk); }
    if (got.a >= (round + 1) * MSG && got.b >= (round + 1) * MSG) {
      times.push(t - roundStart);
      if (++round < ROUNDS) send(t);
    }
  };
  sim.a.onEvents = (_e, t) => onRead('a', t);
  sim.b.onEvents = (evs, t) => { for (const e of evs) if (e.type === 'open') id = e.id; onRead('b', t); };
  sim.at(0, () => { id = sim.a.conn.openStream(new Uint8Array([1])); sim.a.conn.write(id, new Uint8Array(0)); });
  // b learns the stream from a's first message: start the rounds once both know it
  sim.at(100, () => send(100));
  sim.run(600_000, () => round >= ROUNDS);
  const intact = [...Array(round).keys()].every((r) =>
    bytes.a.slice(r * MSG, (r + 1) * MSG).every((x) => x === payload(r, 'b')[0]) &&
    bytes.b.slice(r * MSG, (r + 1) * MSG).every((x) => x === payload(r, 'a')[0]));
  return { times, sim, intact };
}

const p99 = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.99)]!;

describe('tail duplication on a lossy path', () => {
  const lossy: LinkConfig = { delayMs: 10, loss: 0.02 };

  it('cuts the p99 of request/response rounds under 2 % loss; every byte arrives once, in order', () => {
    const on = rounds(7, lossy, true);
    const off = rounds(7, lossy, false);
    expect(on.times.length).toBe(ROUNDS);
    expect(off.times.length).toBe(ROUNDS);
    expect(on.intact && off.intact).toBe(true);
    // off: a lost message waits for a probe timeout (≥ 1 RTT more); on: ~srtt/8 more
    console.log(`round p99: ${p99(on.times).toFixed(1)} ms with copies, ${p99(off.times).toFixed(1)} ms without`);
    expect(p99(off.times)).toBeGreaterThan(35);
    expect(p99(on.times)).toBeLessThan(0.75 * p99(off.times));
    expect(on.sim.a.conn.stats().tailCopies).toBeGreaterThan(ROUNDS / 2);
    for (const s of [on.sim.a, on.sim.b]) expect(s.conn.checkInvariants()).toBeNull();
  });

  it('a lossless path sends no copy', () => {
    const r = rounds(3, { delayMs: 10 }, true);
    expect(r.times.length).toBe(ROUNDS);
    expect(r.sim.a.conn.stats().tailCopies).toBe(0);
    expect(r.sim.b.conn.stats().tailCopies).toBe(0);
  });

  it('copies only small flights, only while the path lost packets recently, one copy per packet', () => {
    const d = new TailDuplicator();
    d.onSent(1, 1200, 0, 20);
    expect(d.nextDeadline()).toBe(Infinity); // no loss seen
    d.onLoss(100);
    d.onSent(2, DUP_MAX_FLIGHT_BYTES + 1, 100, 20);
    expect(d.nextDeadline()).toBe(Infinity); // bulk
    d.onSent(3, 1200, 100, 20);
    expect(d.nextDeadline()).toBe(102.5); // srtt / 8
    expect(d.takeDue(102)).toEqual([]);
    expect(d.takeDue(103)).toEqual([3]);
    expect(d.takeDue(200)).toEqual([]);
    d.onSent(4, 1200, 100 + LOSSY_FOR_MS, 20);
    expect(d.nextDeadline()).toBe(Infinity); // the loss is too long ago
  });

  it('an acknowledged packet leaves the schedule: its copy time wakes nobody', () => {
    const d = new TailDuplicator();
    d.onLoss(0);
    d.onSent(1, 1200, 10, 20);
    d.onSent(2, 1200, 11, 20);
    expect(d.nextDeadline()).toBe(12.5);
    d.onAcked(1);
    expect(d.nextDeadline()).toBe(13.5); // only packet 2's copy is still due
    d.onAcked(2);
    expect(d.nextDeadline()).toBe(Infinity);
    expect(d.takeDue(100)).toEqual([]);
    d.onAcked(7); // never scheduled: nothing changes
    expect(d.nextDeadline()).toBe(Infinity);
  });
});
