// Issue #12 row 7: one captured handshake initiation replayed at the victim agent from
// random forged sources (a raw socket: root). Screened before any DH, the copies cost the
// victim little CPU, and its pair's traffic goes on.
import { beforeAll, describe, expect, it } from 'vitest';
import { extraCpuS, legitWithin, runAttack } from './attack-run.js';
import { builtCliMissing, withWorld } from './world.js';
import { rawUdpUnavailable } from '../../src/tools/attacker/raw-udp.js';

const noRaw = rawUdpUnavailable();
if (noRaw) process.stdout.write(`*** ADVERSARIAL SPOOFING TESTS SKIPPED: ${noRaw} ***\n`);

beforeAll(() => {
  const missing = builtCliMissing();
  if (missing) throw new Error(missing);
});

/** the victim also absorbs a flood on the same 2 cores: a wider factor than for the party rows */
const LEGIT = { factor: 4, slackMs: 15, bulkFactor: 4 };

describe.skipIf(noRaw !== null)('an off-path attacker replaying an initiation', () => {
  it('row 7: one captured initiation replayed from random sources costs the victim little CPU', async () => {
    const seconds = 4;
    const r = await withWorld({}, (w) => runAttack(w, 7, {
      attack: 'replay-initiation', keyFile: w.attackerKeyFile, bind: w.attackerUdp, victimKey: w.victim.key.text, victim: w.victim.udp, victimIndex: 0,
      relay: w.relay.udp, relayKey: w.relay.key, pps: 10_000, seconds, maxPackets: 40_000,
    }));
    // unprotected, each copy costs two X25519 operations before the replay check: the
    // victim saturates a core; screened before any DH, the copies cost a lookup each
    expect(r.attacker.sent as number).toBeGreaterThan(20_000);
    expect(extraCpuS(r, 'victim') / seconds, 'victim CPU share the replay flood cost').toBeLessThan(0.2);
    expect(legitWithin(r, LEGIT)).toEqual([]);
  }, 90_000);
});
