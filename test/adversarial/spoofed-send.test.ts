// Issue #12 row 8: an off-path attacker forges SEND frames with a registered agent's exact
// address:port (a raw socket: root). The relay cannot tell them from the agent's own
// without per-packet crypto (docs/SECURITY.md); what must hold: the agent keeps its binding,
// the destination refuses and counts every forged frame, the pair's traffic goes on.
import { beforeAll, describe, expect, it } from 'vitest';
import { LEGIT_FLOOD_ROWS, dropsReading, legitWithin, readingsMonitor, registeredReading, runAttack } from './attack-run.js';
import { noRawSpoofing, requireBuiltClis, withWorld } from './world.js';

const noRaw = noRawSpoofing();

beforeAll(requireBuiltClis);

describe.skipIf(noRaw !== null)('an off-path attacker with a registered agent\'s address', () => {
  it('row 8: SEND frames forged with the peer\'s exact address: the peer keeps its binding, the victim drops them all', async () => {
    // what cannot be prevented without per-packet crypto (docs/SECURITY.md): the forged
    // frames are forwarded as the peer's; what must hold: the peer stays registered, the
    // victim's session layer refuses and counts every one, the pair's traffic goes on
    const r = await withWorld({}, (w) => runAttack(w, 8, {
      attack: 'spoof-send', relay: w.relay.udp, asAgent: w.peer.udp, destKey: w.victim.key.text, payloadBytes: 200, pps: 5_000, seconds: 3, maxPackets: 20_000,
    }, readingsMonitor({ peerRegistered: registeredReading(w.peer), victimSessionDrops: dropsReading(w.victim, 'reason="session_') })));
    const sent = r.attacker.sent as number;
    expect(sent).toBeGreaterThan(10_000);
    expect(r.monitor.samples).toBeGreaterThan(20);
    expect(r.monitor.peerRegisteredZeros, 'samples of the peer\'s relay registration that were down').toBe(0);
    // under load part of them is lost in the victim's socket buffer before it is counted
    expect(r.monitor.victimSessionDropsDelta! / sent, 'share of the forged frames the victim refused and counted').toBeGreaterThan(0.5);
    expect(legitWithin(r, LEGIT_FLOOD_ROWS)).toEqual([]);
  }, 90_000);
});
