// Issue #12 row 8: an off-path attacker forges SEND frames with a registered agent's exact
// address:port (a raw socket: root). The relay cannot tell them from the agent's own
// without per-packet crypto (docs/SECURITY.md); what must hold: the agent keeps its binding,
// the destination refuses and counts every forged frame, the pair's traffic goes on.
import { beforeAll, describe, expect, it } from 'vitest';
import { LEGIT_FLOOD_ROWS, legitWithin, registrationMonitor, runAttack } from './attack-run.js';
import { agentMetricsUrl, metric, noRawSpoofing, requireBuiltClis, withWorld } from './world.js';

const noRaw = noRawSpoofing();

beforeAll(requireBuiltClis);

describe.skipIf(noRaw !== null)('an off-path attacker with a registered agent\'s address', () => {
  it('row 8: SEND frames forged with the peer\'s exact address: the peer keeps its binding, the victim drops them all', async () => {
    // what cannot be prevented without per-packet crypto (docs/SECURITY.md): the forged
    // frames are forwarded as the peer's; what must hold: the peer stays registered, the
    // victim's session layer refuses and counts every one, the pair's traffic goes on
    let sessionDrops = 0;
    const r = await withWorld({}, async (w) => {
      const drops = (): Promise<number> => metric(agentMetricsUrl(w.victim), 'mpyc_agent_dropped_packets_total', 'reason="session_');
      const before = await drops();
      const rep = await runAttack(w, 8, {
        attack: 'spoof-send', relay: w.relay.udp, asAgent: w.peer.udp, destKey: w.victim.key.text, payloadBytes: 200, pps: 5_000, seconds: 5, maxPackets: 30_000,
      }, registrationMonitor(w.peer));
      sessionDrops = (await drops()) - before;
      return rep;
    });
    const sent = r.attacker.sent as number;
    expect(sent).toBeGreaterThan(10_000);
    expect(r.monitor.unregisteredSamples, 'samples of the peer\'s relay registration that were down').toBe(0);
    expect(sessionDrops / sent, 'share of the forged frames the victim refused and counted').toBeGreaterThan(0.9);
    expect(legitWithin(r, LEGIT_FLOOD_ROWS)).toEqual([]);
  }, 90_000);
});
