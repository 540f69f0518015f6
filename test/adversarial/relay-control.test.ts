// Issue #12 row 4: an off-path attacker forges the relay control frames that change a registration
// (RESTARTING, REJECTED, NOT_REGISTERED, CHALLENGE) from the relay's own address:port (a
// raw socket: root). The victim stays registered and its pair's traffic goes on.
import { beforeAll, describe, expect, it } from 'vitest';
import { LEGIT_FLOOD_ROWS, legitWithin, readingsMonitor, registeredReading, runAttack } from './attack-run.js';
import { noRawSpoofing, requireBuiltClis, withWorld } from './world.js';

const noRaw = noRawSpoofing();

beforeAll(requireBuiltClis);

describe.skipIf(noRaw !== null)('an off-path attacker with the relay\'s address', () => {
  it('row 4: forged relay control frames from the relay\'s own address leave the victim registered', async () => {
    const r = await withWorld({}, (w) => runAttack(w, 4, { attack: 'spoof-relay-control', relay: w.relay.udp, victim: w.victim.udp, intervalMs: 100, seconds: 4, maxPackets: 1_000 }, readingsMonitor({ victimRegistered: registeredReading(w.victim) })));
    expect(r.monitor.samples).toBeGreaterThan(5);
    expect(r.monitor.victimRegisteredZeros, 'samples of the victim\'s relay registration that were down').toBe(0);
    expect(legitWithin(r, LEGIT_FLOOD_ROWS)).toEqual([]);
  }, 90_000);
});
