// DPLPMTUD (mtu.ts, RFC 8899): the search on a fake path, black-hole fallback, and in the
// simulator a bulk transfer over a link with an MTU: the size converges below the link's
// MTU, survives an MTU drop mid-transfer, and probes never count as congestion loss.
import { describe, it, expect } from 'vitest';
import { BLACK_HOLE_LOSSES, MAX_PROBES, MtuDiscovery, SEARCH_DONE_BYTES } from '../../src/transport/mtu.js';
import { SimPair } from '../../src/sim/harness.js';

/** runs the search against a path that carries `linkMtu`; returns the sizes probed */
function search(m: MtuDiscovery, linkMtu: number): number[] {
  const probed: number[] = [];
  let pn = 0;
  for (let size = m.nextProbe(); size > 0 && probed.length < 200; size = m.nextProbe()) {
    probed.push(size);
    m.onProbeSent(pn++, size, 1000);
    if (size <= linkMtu) m.onProbeAcked();
    else m.onProbeLost();
  }
  return probed;
}

describe('MtuDiscovery', () => {
  it('without a larger path bound it never probes', () => {
    const m = new MtuDiscovery(1200);
    expect(m.nextProbe()).toBe(0);
    expect(m.current).toBe(1200);
  });

  it('binary search converges to within SEARCH_DONE_BYTES below the path MTU', () => {
    const m = new MtuDiscovery(1200);
    m.setPathMax(65_000);
    const probed = search(m, 9000);
    expect(m.current).toBeLessThanOrEqual(9000);
    expect(m.current).toBeGreaterThan(9000 - SEARCH_DONE_BYTES);
    expect(m.searching).toBe(false);
    // log2(63800 / 32) ≈ 11 sizes, MAX_PROBES attempts each for those too large
    expect(probed.length).toBeLessThan(12 * MAX_PROBES);
  });

  it('a size is given up only after MAX_PROBES lost probes (one loss is not enough)', () => {
    const m = new MtuDiscovery(1200);
    m.setPathMax(2000);
    const first = m.nextProbe();
    m.onProbeSent(0, first, 10);
    m.onProbeLost();
    expect(m.nextProbe()).toBe(first);
    expect(m.expire(5)).toBe(-1);
    m.onProbeSent(1, first, 10);
    expect(m.expire(10)).toBe(1); // a timed-out probe counts as lost
    m.onProbeSent(2, first, 20);
    m.onProbeLost();
    expect(m.nextProbe()).toBeLessThan(first);
  });

  it('black hole: repeated loss of large packets after the last large ACK falls back to the base', () => {
    const m = new MtuDiscovery(1200);
    m.setPathMax(9000);
    search(m, 9000);
    const big = m.current;
    m.onPacketAcked(100, big);
    // losses of large packets sent before the last acked one are congestion, not a black hole
    for (let i = 0; i < 10; i++) expect(m.onPacketLost(50 + i, big)).toBe(false);
    for (let i = 1; i < BLACK_HOLE_LOSSES; i++) expect(m.onPacketLost(100 + i, big)).toBe(false);
    expect(m.onPacketLost(100 + BLACK_HOLE_LOSSES, big)).toBe(true);
    expect(m.current).toBe(1200);
    expect(m.nextProbe()).toBeGreaterThan(1200); // and searches again, below the failed size
    search(m, 1400);
    expect(m.current).toBeLessThanOrEqual(1400);
    expect(m.current).toBeGreaterThan(1400 - SEARCH_DONE_BYTES);
  });

  it('a path change goes back to the base and searches again', () => {
    const m = new MtuDiscovery(1200);
    m.setPathMax(9000);
    search(m, 9000);
    m.pathChanged();
    expect(m.current).toBe(1200);
    expect(m.nextProbe()).toBeGreaterThan(1200);
  });
});

describe('DPLPMTUD in the simulator', () => {
  function bulk(sim: SimPair, total: number) {
    let got = 0;
    sim.b.onEvents = (evs) => {
      for (const e of evs) if ('id' in e) { let c; while ((c = sim.b.conn.read(e.id))) got += c.length; }
    };
    let off = 0;
    let id = -1;
    const chunk = new Uint8Array(256 * 1024);
    const pump = () => { while (off < total) { const k = sim.a.conn.write(id, chunk.subarray(0, Math.min(chunk.length, total - off))); if (!k) break; off += k; } };
    sim.a.onEvents = (evs) => evs.forEach((e) => e.type === 'writable' && pump());
    sim.at(0, () => { id = sim.a.conn.openStream(new Uint8Array([1])); pump(); });
    return () => got;
  }

  it('converges below the link MTU, moves the bulk in larger packets, survives an MTU drop', () => {
    const link = { delayMs: 5, mtu: 9000 };
    const sim = new SimPair(21, { ab: { ...link, rateBytesPerMs: 12_500, queueBytes: 250_000 }, ba: { ...link } }, { pathMaxPacketSize: 65_000 });
    const got = bulk(sim, 40_000_000);
    let sizeBefore = 0;
    let lostBefore = 0;
    let queueDropsBefore = 0;
    let tooBigBefore = 0;
    sim.at(1500, () => {
      queueDropsBefore = sim.ab.stats.queueDropped;
      tooBigBefore = sim.ab.stats.tooBig;
      sizeBefore = sim.a.conn.packetSize;
      lostBefore = sim.a.conn.stats().packetsLost;
      // the path's MTU drops (a route change): full-size packets vanish from now on
      sim.ab.cfg = { ...sim.ab.cfg, mtu: 1400 };
      sim.ba.cfg = { ...sim.ba.cfg, mtu: 1400 };
    });
    const end = sim.run(60_000, () => got() >= 40_000_000);
    const s = sim.a.conn.stats();
    expect(sizeBefore).toBeLessThanOrEqual(9000);
    expect(sizeBefore).toBeGreaterThan(9000 - 32);
    // probes too big for the link were lost on the way up, but never counted as packet loss
    expect(tooBigBefore).toBeGreaterThan(0);
    expect(lostBefore).toBeLessThanOrEqual(queueDropsBefore);
    expect(got()).toBe(40_000_000);
    expect(s.mtuBlackHoles).toBeGreaterThanOrEqual(1);
    expect(s.packetSize).toBeLessThanOrEqual(1400);
    expect(s.packetSize).toBeGreaterThanOrEqual(1200); // re-searching up to 1400 meanwhile
    expect(end).toBeLessThan(20_000);
    expect(sim.a.conn.checkInvariants()).toBeNull();
  });

  it('without a path bound nothing is probed and every packet stays at the base size', () => {
    const sim = new SimPair(22, { ab: { delayMs: 5 }, ba: { delayMs: 5 } });
    sim.keepTrace = true;
    const got = bulk(sim, 2_000_000);
    sim.run(30_000, () => got() >= 2_000_000);
    expect(Math.max(...sim.trace.map(([, , len]) => len))).toBeLessThanOrEqual(1200);
    expect(sim.a.conn.stats().mtuProbes).toBe(0);
  });
});
