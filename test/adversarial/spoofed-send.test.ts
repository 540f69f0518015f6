// Issue #12 row 8: an off-path attacker forges SEND frames with a registered agent's exact
// address:port (a raw socket: root). Every SEND carries its registration's token, which
// only the agent and the relay know (docs/protocol/relay.md, "What a spoofer ... can do"):
// the relay drops the forged frames (`bad_token`) before they are charged to the agent's
// budget or forwarded; the agent keeps its binding and the pair's traffic goes on.
import { beforeAll, describe, expect, it } from 'vitest';
import { LEGIT_FLOOD_ROWS, dropsReading, legitWithin, readingsMonitor, registeredReading, runAttack } from './attack-run.js';
import { metric, noRawSpoofing, requireBuiltClis, withWorld } from './world.js';

const noRaw = noRawSpoofing();

beforeAll(requireBuiltClis);

describe.skipIf(noRaw !== null)('an off-path attacker with a registered agent\'s address', () => {
  it('row 8: SEND frames forged with the peer\'s exact address: the relay drops them (bad token), the peer keeps its binding', async () => {
    const r = await withWorld({}, (w) => runAttack(w, 8, {
      attack: 'spoof-send', relay: w.relay.udp, asAgent: w.peer.udp, destKey: w.victim.key.text, payloadBytes: 200, pps: 5_000, seconds: 3, maxPackets: 20_000,
    }, readingsMonitor({
      peerRegistered: registeredReading(w.peer), victimSessionDrops: dropsReading(w.victim, 'reason="session_'),
      relayBadToken: () => metric(w.relay.metricsUrl, 'mpyc_relay_dropped_total', 'reason="bad_token"'),
    })));
    const sent = r.attacker.sent as number;
    expect(sent).toBeGreaterThan(10_000);
    expect(r.monitor.samples).toBeGreaterThan(20);
    expect(r.monitor.peerRegisteredZeros, 'samples of the peer\'s relay registration that were down').toBe(0);
    // under load part of them is lost in the relay's socket buffer before it is counted
    expect(r.monitor.relayBadTokenDelta! / sent, 'share of the forged frames the relay dropped for their token').toBeGreaterThan(0.5);
    expect(r.monitor.victimSessionDropsDelta! / sent, 'share of the forged frames forwarded to the victim').toBeLessThan(0.01);
    expect(legitWithin(r, LEGIT_FLOOD_ROWS)).toEqual([]);
  }, 90_000);
});
