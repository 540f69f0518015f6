// Issue #12 row 6 (pending: main's relay drops a stranger's packets by the destination's
// accept set, but the agent never sends one): 50 freshly registered keys, none of the
// session, flood the victim's key through the relay. The victim receives little of it and
// its pair's traffic goes on.
import { beforeAll, describe, expect, it } from 'vitest';
import { LEGIT_FLOOD_ROWS, dropsReading, legitWithin, readingsMonitor, runAttack } from '../attack-run.js';
import { requireBuiltClis, withWorld } from '../world.js';

beforeAll(requireBuiltClis);

describe('strangers flooding a victim key', () => {
  it('row 6: 50 stranger keys flooding the victim key: the victim receives little of it', async () => {
    const r = await withWorld({}, (w) => runAttack(w, 6, {
      attack: 'stranger-flood', relay: w.relay.udp, relayKey: w.relay.key, victimKey: w.victim.key.text, keys: 50, payloadBytes: 1200, pps: 20_000, seconds: 4, maxPackets: 80_000,
    }, readingsMonitor({ victimStrangerIntake: dropsReading(w.victim, 'relay_from_unknown_key') })));
    const intake = r.monitor.victimStrangerIntakeDelta!;
    const sent = r.attacker.sent as number;
    expect(r.attacker.registered).toBe(50);
    expect(sent).toBeGreaterThan(20_000);
    expect(intake / sent, 'share of the strangers\' packets the relay delivered to the victim').toBeLessThan(0.1);
    expect(legitWithin(r, LEGIT_FLOOD_ROWS)).toEqual([]);
  }, 90_000);
});
