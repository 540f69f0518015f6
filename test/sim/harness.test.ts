// SimPair: two Connections over simulated links on a virtual clock.
import { describe, it, expect } from 'vitest';
import { SimPair } from '../../src/sim/harness.js';

function bulk(sim: SimPair, bytes: number) {
  const data = new Uint8Array(bytes).map((_, i) => (i * 7 + (i >> 9)) & 0xff);
  const chunks: Uint8Array[] = [];
  let fin = false;
  let sid = -1;
  let off = 0;
  sim.b.onEvents = (evs) => {
    for (const e of evs) {
      if (e.type === 'open') sid = e.id;
      if (e.type === 'readable' || e.type === 'open' || e.type === 'fin') {
        let c;
        while ((c = sim.b.conn.read(e.id))) chunks.push(c.slice());
      }
      if (e.type === 'fin') fin = true;
    }
  };
  const id = sim.a.conn.openStream(new Uint8Array([1, 2]));
  const pump = () => {
    while (off < data.length) {
      const n = sim.a.conn.write(id, data.subarray(off, off + 65536));
      off += n;
      if (n === 0) break;
    }
    if (off === data.length) sim.a.conn.finish(id);
  };
  sim.a.onEvents = (evs) => {
    for (const e of evs) if (e.type === 'writable') pump();
  };
  pump();
  return { id, data, done: () => fin, got: () => Buffer.concat(chunks), sid: () => sid };
}

describe('simulator harness', () => {
  it('moves 1 MB over a clean 20 ms RTT path quickly', () => {
    const sim = new SimPair(1, { ab: { delayMs: 10 }, ba: { delayMs: 10 } });
    const t = bulk(sim, 1_000_000);
    const end = sim.run(60_000, t.done);
    expect(t.got().equals(Buffer.from(t.data))).toBe(true);
    expect(t.sid()).toBe(t.id);
    expect(end).toBeLessThan(400); // slow start from 10 packets: ~7 RTTs
    expect(sim.a.conn.stats().packetsLost).toBe(0);
  });

  it('a path switch mid-transfer loses and duplicates nothing', () => {
    const sim = new SimPair(2, { ab: { delayMs: 20, rateBytesPerMs: 2500, queueBytes: 100_000 }, ba: { delayMs: 20 } });
    const t = bulk(sim, 2_000_000);
    sim.switchPath(300, { ab: { delayMs: 5, rateBytesPerMs: 2500, queueBytes: 100_000 }, ba: { delayMs: 5 } });
    sim.run(60_000, t.done);
    expect(t.done()).toBe(true);
    expect(t.got().equals(Buffer.from(t.data))).toBe(true);
    expect(sim.a.conn.stats().minRttMs).toBeLessThan(15); // the estimator restarted on the new path
  });

  it('recovers after a 2 s blackhole in both directions', () => {
    const sim = new SimPair(3, { ab: { delayMs: 10 }, ba: { delayMs: 10 } });
    sim.ab.blackhole(50, 2050);
    sim.ba.blackhole(50, 2050);
    const t = bulk(sim, 3_000_000);
    const seen: number[] = [];
    sim.at(2050, () => seen.push(sim.b.conn.stats().packetsReceived));
    // the next probe goes out within the capped PTO period (2 s) after the outage ends
    sim.at(2050 + 2000 + 20, () => seen.push(sim.b.conn.stats().packetsReceived));
    const end = sim.run(60_000, t.done);
    expect(t.got().equals(Buffer.from(t.data))).toBe(true);
    expect(end).toBeGreaterThan(2050);
    expect(seen[1]).toBeGreaterThan(seen[0]!);
    expect(end).toBeLessThan(8000);
  });
});
