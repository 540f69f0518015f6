// Peer restart: streams we opened that the old incarnation never acknowledged are carried
// over to the new one (re-sent from offset 0, open included); everything else is reset.
import { describe, it, expect } from 'vitest';
import { SimPair } from '../../src/sim/harness.js';
import { Connection } from '../../src/transport/connection.js';
import type { TransportEvent } from '../../src/transport/types.js';

function restartScenario(dataBytes: number) {
  const sim = new SimPair(5, { ab: { delayMs: 10 }, ba: { delayMs: 10 } });
  const aEvents: TransportEvent[] = [];
  const bEvents: TransportEvent[] = [];
  const bRead: number[] = [];
  sim.a.onEvents = (evs) => aEvents.push(...evs);
  const bHandler = (evs: TransportEvent[]) => {
    for (const e of evs) {
      bEvents.push(e);
      if (e.type === 'open' || e.type === 'readable' || e.type === 'fin') {
        let c;
        while ((c = sim.b.conn.read(e.id))) bRead.push(...c);
      }
    }
  };
  sim.b.onEvents = bHandler;
  // b talks first so a learns b's epoch
  sim.at(0, () => sim.b.conn.openStream(new Uint8Array([7])));
  let id = -1;
  sim.at(20, () => {
    id = sim.a.conn.openStream(new TextEncoder().encode('late'));
    if (dataBytes) sim.a.conn.write(id, new Uint8Array(dataBytes).fill(3));
  });
  // b's agent restarts before a's open (in flight until t = 30) arrives
  sim.at(25, () => {
    sim.b.conn = new Connection({ side: 1, epoch: 0x0b0b0b0b }, 25);
  });
  sim.run(5000, () => bEvents.some((e) => e.type === 'open') && bRead.length >= dataBytes);
  return { aEvents, bEvents, bRead, id };
}

describe('peer restart', () => {
  for (const dataBytes of [0, 5000]) {
    it(`an unacknowledged stream we opened (${dataBytes ? 'with data' : 'bare open'}) reaches the new incarnation`, () => {
      const r = restartScenario(dataBytes);
      expect(r.aEvents.some((e) => e.type === 'peerRestarted')).toBe(true);
      // the stream b had opened to a's old peer is reset; ours is not
      expect(r.aEvents.some((e) => e.type === 'reset' && e.id === 1)).toBe(true);
      expect(r.aEvents.some((e) => e.type === 'reset' && e.id === r.id)).toBe(false);
      const open = r.bEvents.find((e) => e.type === 'open');
      expect(open).toBeDefined();
      expect(open && open.type === 'open' && new TextDecoder().decode(open.target)).toBe('late');
      expect(r.bRead.length).toBe(dataBytes);
    });
  }
});
