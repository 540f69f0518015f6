import { SimPair } from '../../src/sim/harness.js';
import type { LinkConfig } from '../../src/sim/network.js';

export interface Plan { sizes: number[]; finAfter: boolean }

export function runScenario(seed: number, link: LinkConfig, plans: Plan[], switchAt?: number, keepTrace = false) {
  const sim = new SimPair(seed, { ab: link, ba: link });
  sim.keepTrace = keepTrace;
  sim.checkInvariant = (c) => {
    const s = c.stats();
    // only PTO probes may go beyond the window
    if (s.cwndViolations > 0) throw new Error(`sent beyond cwnd: in flight ${s.bytesInFlight} > cwnd ${s.cwnd}`);
    if (s.bytesInFlight < 0) throw new Error('negative bytes in flight');
  };
  const expected = new Map<number, Uint8Array>();
  const received = new Map<number, number[]>();
  const finished = new Set<number>();
  const pending = new Map<number, { data: Uint8Array; off: number; fin: boolean }>();
  let byteSeed = seed;
  for (const p of plans) {
    const total = p.sizes.reduce((a, b) => a + b, 0);
    const data = new Uint8Array(total);
    for (let i = 0; i < total; i++) data[i] = (byteSeed = (byteSeed * 1103515245 + 12345) >>> 0) >>> 24;
    const id = sim.a.conn.openStream(new TextEncoder().encode(`t${expected.size}`));
    expected.set(id, data);
    pending.set(id, { data, off: 0, fin: p.finAfter });
  }
  const pump = () => {
    for (const [id, p] of pending) {
      while (p.off < p.data.length) {
        const n = sim.a.conn.write(id, p.data.subarray(p.off, Math.min(p.data.length, p.off + 3000)));
        if (n === 0) break;
        p.off += n;
      }
      if (p.off === p.data.length) { if (p.fin) sim.a.conn.finish(id); pending.delete(id); }
    }
  };
  sim.a.onEvents = (evs) => { for (const e of evs) { if (e.type === 'writable') pump(); if (e.type === "connectionClosed") throw new Error(`unexpected ${JSON.stringify(e)}`); } };
  sim.b.onEvents = (evs) => {
    for (const e of evs) {
      if (e.type === "connectionClosed") throw new Error(`unexpected ${JSON.stringify(e)}`);
      if (e.type === 'open' || e.type === 'readable') {
        let c;
        while ((c = sim.b.conn.read(e.id))) { let r = received.get(e.id); if (!r) received.set(e.id, (r = [])); for (const x of c) r.push(x); }
      }
      if (e.type === 'fin') finished.add(e.id);
    }
  };
  pump();
  if (switchAt !== undefined) sim.switchPath(switchAt, { ab: { ...link, delayMs: 3 }, ba: { ...link, delayMs: 3 } });
  const allDone = () => [...expected.entries()].every(([id, d]) => (plans.find((_, i) => i === (id >> 1))!.finAfter ? finished.has(id) : (received.get(id)?.length ?? 0) === d.length));
  const end = sim.run(120_000, allDone);
  return { sim, expected, received, finished, end, allDone: allDone() };
}

