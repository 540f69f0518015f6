// Issue #12 row 7: one captured handshake initiation replayed at the victim agent from
// random forged sources (a raw socket: root). Screened before any DH, the copies cost the
// victim little CPU, and its pair's traffic goes on.
import { beforeAll, describe, expect, it } from 'vitest';
import { extraCpuS, LEGIT_FLOOD_ROWS, legitWithin, runAttack } from './attack-run.js';
import { agentMetricsUrl, metric, noRawSpoofing, requireBuiltClis, withWorld } from './world.js';

const noRaw = noRawSpoofing();

beforeAll(requireBuiltClis);

describe.skipIf(noRaw !== null)('an off-path attacker replaying an initiation', () => {
  it('row 7: one captured initiation replayed from random sources costs the victim little CPU', async () => {
    const seconds = 4;
    let counted = 0;
    const r = await withWorld({}, async (w) => {
      const drops = (): Promise<number> => metric(agentMetricsUrl(w.victim), 'mpyc_agent_dropped_packets_total', 'reason="session_');
      const before = await drops();
      const rep = await runAttack(w, 7, {
        attack: 'replay-initiation', keyFile: w.attackerKeyFile, bind: w.attackerUdp, victimKey: w.victim.key.text, victim: w.victim.udp, victimIndex: 0,
        relay: w.relay.udp, relayKey: w.relay.key, pps: 10_000, seconds, maxPackets: 40_000,
      });
      counted = (await drops()) - before;
      return rep;
    });
    // unprotected, each copy costs two X25519 operations before the replay check: the
    // victim saturates a core; screened before any DH, the copies cost a lookup each
    const sent = r.attacker.sent as number;
    expect(sent).toBeGreaterThan(20_000);
    expect(counted / sent, 'share of the copies the victim dropped and counted').toBeGreaterThan(0.9);
    expect(extraCpuS(r, 'victim') / seconds, 'victim CPU share the replay flood cost').toBeLessThan(0.1);
    expect(legitWithin(r, LEGIT_FLOOD_ROWS)).toEqual([]);
  }, 90_000);
});
