import { describe, it, expect } from 'vitest';
import { SimPair } from '../../src/sim/harness.js';

describe('quick', () => {
  it('moves 1 MB over a clean 20ms path', () => {
    const sim = new SimPair(1, { ab: { delayMs: 10 }, ba: { delayMs: 10 } });
    const data = new Uint8Array(1_000_000).map((_, i) => i * 7);
    let got = 0; let fin = false; let sid = -1; let off = 0;
    const chunks: Uint8Array[] = [];
    sim.b.onEvents = (evs) => {
      for (const e of evs) {
        if (e.type === 'open') sid = e.id;
        if (e.type === 'readable' || e.type === 'open') {
          let c; while ((c = sim.b.conn.read(e.id))) { chunks.push(c); got += c.length; }
        }
        if (e.type === 'fin') fin = true;
      }
    };
    const id = sim.a.conn.openStream(new Uint8Array([1, 2]));
    const pump = () => { while (off < data.length) { const n = sim.a.conn.write(id, data.subarray(off, off + 65536)); off += n; if (n === 0) break; } if (off === data.length) sim.a.conn.finish(id); };
    sim.a.onEvents = (evs) => { for (const e of evs) if (e.type === 'writable') pump(); };
    pump();
    const t = sim.run(60_000, () => fin);
    console.log('t', t, got, sim.a.conn.stats());
    expect(got).toBe(data.length);
    expect(fin).toBe(true);
    expect(sid).toBe(id);
  });
});
