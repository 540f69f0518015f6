// Real agents (src/agent/agent.ts) and a real relay (issue #12 attack 6, issue #13 item 6):
// every agent tells the relay its accept set, its session's other parties
// (src/agent/relay-set.ts), so a stranger's packets are dropped at the relay
// (`not_accepted`) and never reach the agent while the pair still talks through the relay;
// a KEY_CONFLICT from the relay is a warning that says what to do and the relay's status reason.
import { afterEach, describe, expect, it } from 'vitest';
import { PeerKey } from '../../src/common/peer-key.js';
import { generateKeyPair } from '../../src/noise/index.js';
import type { Agent as RealAgent } from '../../src/agent/agent.js';
import { runParty } from '../../src/tools/mpyc-sim.js';
import { cluster, recordingLogger, type Cluster } from '../agent/helpers.js';
import { registered, startAgent, waitFor, type Agent } from './helpers.js';

let c: Cluster | undefined;
const clients: Agent[] = [];
afterEach(async () => {
  for (const a of clients.splice(0)) a.close();
  await c?.stopAll();
  c = undefined;
});

const keyOf = (cl: Cluster, i: number): PeerKey => PeerKey.fromBytes(cl.parties[i]!.key.publicKey);

/** the agent's own count of relayed packets from keys that are not its session's */
async function strangerIntake(a: RealAgent): Promise<number> {
  const m = /^mpyc_agent_dropped_packets_total\{reason="relay_from_unknown_key"\} (\d+)/m.exec(await a.metrics());
  return Number(m?.[1] ?? 0);
}

describe('agents and the relay\'s accept sets', () => {
  it('a stranger key\'s packets are dropped at the relay (not_accepted), never reach the agents; the pair still talks over the relay', async () => {
    c = await cluster(2);
    const cl = c;
    const agents = [await cl.startAgent(0, { relayOnly: true }), await cl.startAgent(1, { relayOnly: true })];
    const relay = cl.relays[0]!.server;
    // each agent's accept set is its one peer
    await waitFor(() => [0, 1].every((i) => relay.lookup(keyOf(cl, i))?.accepting === 1), 5000, 'both accept sets at the relay');

    const stranger = await startAgent(cl.relays[0]!, 'udp', { keyPair: generateKeyPair() });
    clients.push(stranger);
    await registered(stranger);
    const before = relay.counters.drops.not_accepted;
    const PACKETS = 200;
    const run = Promise.all([0, 1].map((i) => runParty({ m: 2, pid: i, basePort: cl.parties[i]!.localBase, host: 'localhost', rounds: 20, bulkBytes: 20_000, seed: 'acc', timeoutMs: 30_000 })));
    for (let n = 0; n < PACKETS; n++) {
      for (const i of [0, 1]) expect(stranger.client.send(keyOf(cl, i), new Uint8Array(100).fill(n))).toBe(true);
      if (n % 20 === 19) await new Promise((r) => setTimeout(r, 5));
    }
    const stats = await run;
    await waitFor(() => relay.counters.drops.not_accepted === before + 2 * PACKETS, 5000, 'every stranger packet dropped by an accept set');
    expect(stats.every((s) => s.messagesVerified > 0)).toBe(true);
    expect(agents.every((a) => a.status().peers.every((p) => p.state === 'relay'))).toBe(true);
    expect(await Promise.all(agents.map(strangerIntake))).toEqual([0, 0]);
  }, 60_000);

  it('a KEY_CONFLICT from the relay: a warning that says what to do, and the relay\'s status reason', async () => {
    c = await cluster(2);
    const cl = c;
    const rec = recordingLogger('info');
    const agent = await cl.startAgent(0, { relayOnly: true, relayTransport: 'udp', logger: rec.logger });
    await waitFor(() => agent.status().relays![0]!.registered, 5000, 'agent registered');
    expect(agent.status().relays![0]!.reason).toBeUndefined();
    // the agent's first second is over: its next PING (0.5 s) hears NOT_REGISTERED once two
    // copies of its key elsewhere took its binding, and it registers again, the third move
    await new Promise((r) => setTimeout(r, 1100));
    for (let i = 0; i < 2; i++) {
      const copy = await startAgent(cl.relays[0]!, 'udp', { keyPair: cl.parties[0]!.key });
      await registered(copy);
      copy.close();
    }
    await waitFor(() => rec.lines.some((l) => l.level === 40 && /two places/.test(l.msg) && /stop one/.test(l.msg)), 5000, 'the conflict warning');
    expect(cl.relays[0]!.server.counters.keyConflicts).toBe(1);
    expect(agent.status().relays![0]!.reason).toMatch(/registered from two places.*stop one/);
  }, 30_000);
});
