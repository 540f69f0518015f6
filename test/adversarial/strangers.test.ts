// Issue #12 rows 5, 9, 10: strangers, anyone who reaches the relay: registration floods,
// STUN requests from many sources, idle and dribbling HTTP connections. The relay's CPU and
// descriptors stay bounded, STUN never amplifies; legitimate registrations and the
// legitimate pair's traffic go on. (Row 6, a flood from many registered keys, is in
// stranger-flood.test.ts.)
import * as dgram from 'node:dgram';
import { beforeAll, describe, expect, it } from 'vitest';
import { LEGIT_FLOOD_ROWS, PROBE_REGISTRATIONS, extraCpuS, legitWithin, readingsMonitor, runAttack } from './attack-run.js';
import { sampleProc } from './measure.js';
import { requireBuiltClis, withWorld, type World } from './world.js';
import { encodeBindingRequest, newTransactionId } from '../../src/stun/codec.js';

beforeAll(requireBuiltClis);

/** one ordinary Binding request from a fresh socket: the size of the relay's success answer */
async function bindingSuccessSize(w: World): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const got = new Promise<number>((res) => s.once('message', (m) => res(m.length)));
  s.send(encodeBindingRequest(newTransactionId()), w.relay.udp.port, w.relay.udp.address);
  const n = await got;
  s.close();
  return n;
}

describe('strangers against the relay and a victim key', () => {
  it('row 5: REGISTER frames reusing a cookie with garbage handshakes: the relay stays cheap and keeps registering agents', async () => {
    const seconds = 3;
    const r = await withWorld({}, (w) => runAttack(w, 5, { attack: 'register-flood', relay: w.relay.udp, pps: 5_000, perCookie: 1_000, seconds, maxPackets: 20_000 }));
    expect(r.attacker.sent as number).toBeGreaterThan(5_000);
    // unprotected, every REGISTER costs the relay a DH until a handshake succeeds: it saturates
    expect(extraCpuS(r, 'relay') / seconds, 'relay CPU share the flood cost').toBeLessThan(0.25);
    expect(r.during.registrations, 'fresh agents registered during the flood').toBe(PROBE_REGISTRATIONS);
    expect(legitWithin(r, LEGIT_FLOOD_ROWS)).toEqual([]);
  }, 90_000);


  it('row 9: STUN requests with unknown required attributes: no answer larger than a success, a budget per source', async () => {
    const r = await withWorld({}, (w) => runAttack(w, 9, { attack: 'stun-amplify', relay: w.relay.udp, sources: 20, pps: 20_000, seconds: 3, maxPackets: 60_000 }, undefined,
      async () => ({ successSize: await bindingSuccessSize(w) })));
    const successSize = r.monitor.successSize!;
    const a = r.attacker as { sent: number; bytesOut: number; bytesIn: number; answers: number; largestAnswer: number };
    expect(a.sent).toBeGreaterThan(10_000);
    expect(a.largestAnswer, `largest answer (a Binding success is ${successSize} bytes)`).toBeLessThanOrEqual(successSize);
    // 1000 requests per second per source, far above what any STUN client sends
    expect(a.answers / a.sent, 'share of requests answered').toBeLessThan(0.25);
    expect(legitWithin(r, LEGIT_FLOOD_ROWS)).toEqual([]);
  }, 90_000);

  it('row 10: 4000 idle or dribbling HTTP connections from 10 addresses, 1000 a second: the relay holds few of them', async () => {
    // 400 per address: a per-source cap holds each address to a few dozen, the header and
    // idle timeouts close the rest within seconds
    const connections = 4000;
    const r = await withWorld({}, (w) => runAttack(w, 10, { attack: 'http-hold', http: w.relay.http, connections, sources: 10, opensPerS: 1_000, seconds: 6, maxPackets: connections },
      readingsMonitor({ relayFds: async () => sampleProc(w.relay.proc.child.pid!).fds })));
    const maxFds = r.monitor.relayFdsMax!;
    const a = r.attacker as { opened: number; stillOpen: number };
    expect(a.stillOpen, 'connections the relay still held at the end (6 s)').toBeLessThan(connections / 4);
    expect(maxFds, 'relay descriptors during the attack').toBeLessThan(connections / 2);
    expect(legitWithin(r, LEGIT_FLOOD_ROWS)).toEqual([]);
  }, 90_000);
});
