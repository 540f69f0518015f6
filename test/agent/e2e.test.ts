// Relay + 3 agents + 3 MPyC-like parties on loopback: MPyC's exact connection pattern,
// every byte verified, through the agents' encrypted streams.
import { afterEach, describe, expect, it } from 'vitest';
import { runParty, type PartyStats } from '../../src/tools/mpyc-sim.js';
import { cluster, waitFor, type Cluster } from './helpers.js';

let c: Cluster | undefined;
afterEach(async () => { await c?.stopAll(); c = undefined; });

function runAll(cl: Cluster, rounds = 20, bulkBytes = 256 * 1024): Promise<PartyStats[]> {
  return Promise.all(cl.parties.map((p) => runParty({
    m: cl.parties.length, pid: p.index, basePort: p.localBase, host: 'localhost', rounds, bulkBytes, seed: 'e2e', timeoutMs: 40_000,
  })));
}

describe('agent end to end on loopback', () => {
  it('three parties complete an MPyC-like run; every pair ends on the direct path', async () => {
    c = await cluster(3);
    for (let i = 0; i < 3; i++) await c.startAgent(i);
    const stats = await runAll(c);
    for (const s of stats) {
      expect(s.messagesVerified).toBeGreaterThan(0);
      expect(s.unidentifiedConnections).toBe(0);
    }
    const cl = c;
    await waitFor(() => cl.parties.every((p) => p.agent!.status().peers.every((q) => q.state === 'direct')), 10_000, 'direct paths');
    for (const p of cl.parties) {
      for (const q of p.agent!.status().peers) {
        expect(q.path).toMatchObject({ kind: 'direct', lan: true });
        expect(q.bytesReceived).toBeGreaterThan(256 * 1024);
      }
    }
  }, 60_000);

  it('--relay-only: the same run goes entirely through the relay; no direct packet is sent', async () => {
    c = await cluster(3);
    for (let i = 0; i < 3; i++) await c.startAgent(i, { relayOnly: true });
    const stats = await runAll(c, 10, 64 * 1024);
    expect(stats.every((s) => s.messagesVerified > 0)).toBe(true);
    for (const p of c.parties) {
      const st = p.agent!.status();
      expect(st.localAddresses).toEqual([]);
      expect(st.reflexiveAddress).toBeUndefined();
      for (const q of st.peers) expect(q.state).toBe('relay');
      const metrics = await p.agent!.metrics();
      expect(metrics).not.toMatch(/mpyc_agent_bytes_total\{path="direct",direction="out"\} [1-9]/);
    }
  }, 60_000);

  it('start order does not matter: one agent and its party start 20 s late (MPyC parties 0 and 1 wait meanwhile)', async () => {
    c = await cluster(3);
    await c.startAgent(0);
    await c.startAgent(1);
    const cl = c;
    const early = [0, 1].map((i) => runParty({ m: 3, pid: i, basePort: cl.parties[i]!.localBase, host: 'localhost', rounds: 5, bulkBytes: 10_000, seed: 's', timeoutMs: 60_000 }));
    await new Promise((r) => setTimeout(r, 20_000));
    await cl.startAgent(2);
    const late = runParty({ m: 3, pid: 2, basePort: cl.parties[2]!.localBase, host: 'localhost', rounds: 5, bulkBytes: 10_000, seed: 's', timeoutMs: 40_000 });
    const stats = await Promise.all([...early, late]);
    expect(stats.every((s) => s.messagesVerified > 0)).toBe(true);
  }, 90_000);
});
