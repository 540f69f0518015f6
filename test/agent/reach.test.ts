// Reach on loopback: every relay at once (a relayed pair survives the death of the relay it
// uses, re-homing within 2 s while MPyC-like traffic flows), IPv6 (an IPv6-only relay and
// agents: STUN, registration and the direct path over IPv6), and dual stack.
import { afterEach, describe, expect, it } from 'vitest';
import { runParty } from '../../src/tools/mpyc-sim.js';
import { cluster, waitFor, type Cluster } from './helpers.js';

let c: Cluster | undefined;
afterEach(async () => { await c?.stopAll(); c = undefined; });

function party(cl: Cluster, i: number, rounds: number, bulkBytes: number, seed = 'r') {
  return runParty({ m: cl.parties.length, pid: i, basePort: cl.parties[i]!.localBase, host: 'localhost', rounds, bulkBytes, seed, timeoutMs: 45_000 });
}

describe('every relay at once', () => {
  it('registers with every relay; when the relay a pair uses dies, traffic moves to the other within 2 s and every byte arrives', async () => {
    c = await cluster(3, { relays: 2 });
    for (let i = 0; i < 3; i++) await c.startAgent(i, { relayOnly: true });
    const cl = c;
    await waitFor(() => cl.parties.every((p) => p.agent!.status().relays!.every((r) => r.registered)), 10_000, 'registration with both relays');
    const [first, second] = cl.relayAddresses.map((r) => r.publicKey) as [string, string];
    const onRelay = (key: string): boolean => cl.parties.every((p) => p.agent!.status().peers.every((q) => q.path?.kind === 'relay' && q.path.relay.startsWith(key)));
    // the pairs meet on the first relay of the session
    await waitFor(() => onRelay(first), 10_000, 'pairs on the first relay');
    const runs = [0, 1, 2].map((i) => party(cl, i, 400, 0));
    await waitFor(() => cl.parties.every((p) => p.agent!.status().peers.every((q) => q.streams > 0)), 10_000, 'MPyC connections open');
    const killedAt = performance.now();
    await cl.relays[0]!.server.stop(false);
    await waitFor(() => onRelay(second), 10_000, 'pairs on the second relay');
    const rehomeMs = performance.now() - killedAt;
    const stats = await Promise.all(runs);
    for (const s of stats) {
      expect(s.messagesVerified).toBeGreaterThan(0);
      expect(s.roundLatenciesMs.length).toBe(400);
    }
    const worstRound = Math.max(...stats.flatMap((s) => s.roundLatenciesMs));
    console.log(`re-home after the relay died: ${rehomeMs.toFixed(0)} ms; worst MPC round meanwhile ${worstRound.toFixed(0)} ms`);
    expect(rehomeMs).toBeLessThan(2_000);
    expect(worstRound).toBeLessThan(3_000);
    // each agent says which relays it is on, and no longer counts the dead one
    for (const p of cl.parties) expect(p.agent!.status().relays!.map((r) => r.registered)).toEqual([false, true]);
  }, 60_000);
});

describe('IPv6', () => {
  it('IPv6-only relay and agents: registration, STUN and the direct path all over IPv6', async () => {
    c = await cluster(2, { relayHost: '::1' });
    for (let i = 0; i < 2; i++) await c.startAgent(i, { udpBind: { host: '::1', port: 0 } });
    const cl = c;
    await waitFor(() => cl.parties.every((p) => p.agent!.status().peers.every((q) => q.state === 'direct')), 15_000, 'direct over IPv6');
    const stats = await Promise.all([party(cl, 0, 20, 100_000), party(cl, 1, 20, 100_000)]);
    expect(stats.every((s) => s.messagesVerified > 0)).toBe(true);
    for (const p of cl.parties) {
      const st = p.agent!.status();
      expect(st.relay).toMatchObject({ registered: true, transport: 'udp' });
      expect(st.udpPort).toBe(0);
      expect(st.localAddresses).toEqual([`[::1]:${st.udpPort6}`]);
      expect(st.reflexiveAddress).toBe(`[::1]:${st.udpPort6}`); // STUN over IPv6
      for (const q of st.peers) expect(q.path).toMatchObject({ kind: 'direct', family: 6, lan: true, address: expect.stringMatching(/^\[::1\]:\d+$/) });
    }
  }, 60_000);

  it('dual stack: one port number on both families, both offered as candidates, a direct path found', async () => {
    c = await cluster(2);
    for (let i = 0; i < 2; i++) await c.startAgent(i, { udpBind: { host: '127.0.0.1', port: 0 }, udpBind6: '::1' });
    const cl = c;
    await waitFor(() => cl.parties.every((p) => p.agent!.status().peers.every((q) => q.state === 'direct')), 15_000, 'direct');
    for (const p of cl.parties) {
      const st = p.agent!.status();
      expect(st.udpPort6).toBe(st.udpPort);
      expect(st.localAddresses).toEqual(expect.arrayContaining([`127.0.0.1:${st.udpPort}`, `[::1]:${st.udpPort}`]));
      expect(st.peers[0]!.path).toMatchObject({ kind: 'direct', source: 'interface' });
    }
  }, 60_000);
});
