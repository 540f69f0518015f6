// Issue #12 row 6: 50 freshly registered keys, none of the session, flood the victim's key
// through the relay. Every agent tells the relay whom it accepts packets from (its session's
// other parties: the accept set, src/agent/relay-set.ts), so the relay drops the strangers'
// packets (`not_accepted`) and none reaches the victim; its pair's traffic goes on.
import { beforeAll, describe, expect, it } from 'vitest';
import { LEGIT_FLOOD_ROWS, dropsReading, legitWithin, readingsMonitor, runAttack } from './attack-run.js';
import { metric, requireBuiltClis, withWorld } from './world.js';

beforeAll(requireBuiltClis);

describe('strangers flooding a victim key', () => {
  it('row 6: 50 stranger keys flooding the victim key: the relay drops them by the victim\'s accept set, none reaches it', async () => {
    const r = await withWorld({}, (w) => runAttack(w, 6, {
      attack: 'stranger-flood', relay: w.relay.udp, relayKey: w.relay.key, victimKey: w.victim.key.text, keys: 50, payloadBytes: 1200, pps: 20_000, seconds: 4, maxPackets: 80_000,
    }, readingsMonitor({
      victimStrangerIntake: dropsReading(w.victim, 'relay_from_unknown_key'),
      relayNotAccepted: () => metric(w.relay.metricsUrl, 'mpyc_relay_dropped_total', 'reason="not_accepted"'),
    })));
    const sent = r.attacker.sent as number;
    expect(r.attacker.registered).toBe(50);
    expect(sent).toBeGreaterThan(20_000);
    expect(r.monitor.victimStrangerIntakeDelta, 'strangers\' packets the relay delivered to the victim').toBe(0);
    // under load part of them is lost in the relay's socket buffer before it is counted
    expect(r.monitor.relayNotAcceptedDelta! / sent, 'share of the strangers\' packets the relay dropped by the accept set').toBeGreaterThan(0.5);
    expect(legitWithin(r, LEGIT_FLOOD_ROWS)).toEqual([]);
  }, 90_000);
});
