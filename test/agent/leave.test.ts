// An agent that stops is forgotten by its relays at once (LEAVE, docs/protocol/relay.md
// "Leaving"), not at their expiry (35 s): its peers' packets to it get PEER_GONE and the
// relays' counts no longer show it. Every relay it is registered with is told, and one that
// is gone does not hold the stop up.
import { afterEach, describe, expect, it } from 'vitest';
import type { Agent } from '../../src/agent/agent.js';
import { cluster, waitFor, type Cluster } from './helpers.js';

let c: Cluster | undefined;
afterEach(async () => {
  await c?.stopAll();
  c = undefined;
});

const key = (cl: Cluster, i: number): string => cl.entries[i]!.publicKey;
/** registered as the agent sees it: the relay counts a registration a moment before the
 *  agent reads its REGISTERED, and an agent that does not know it is registered has nothing to leave */
const registeredEverywhere = (a: Agent): boolean => a.status().relays!.every((r) => r.registered);

describe('an agent that stops', () => {
  it('is forgotten by every relay it was registered with within 1 s (expiry is 35 s)', async () => {
    c = await cluster(2, { relays: 2 });
    const cl = c;
    const a = await cl.startAgent(0);
    const b = await cl.startAgent(1);
    await waitFor(() => registeredEverywhere(a) && registeredEverywhere(b) && cl.relays.every((r) => r.server.agentCount === 2), 10_000, 'both agents at both relays');
    await a.stop();
    const t0 = performance.now();
    await waitFor(() => cl.relays.every((r) => r.server.lookup(key(cl, 0)) === undefined), 1000, 'both relays forget the stopped agent');
    expect(performance.now() - t0).toBeLessThan(1000);
    for (const r of cl.relays) {
      expect(r.server.counters.leaves).toBe(1);
      // the other party is still there
      expect(r.server.lookup(key(cl, 1))).toBeDefined();
    }
  });

  it('stops promptly with one of its relays gone, and the other still forgets it', async () => {
    c = await cluster(1, { relays: 2 });
    const cl = c;
    const a = await cl.startAgent(0);
    await waitFor(() => registeredEverywhere(a) && cl.relays.every((r) => r.server.agentCount === 1), 10_000, 'registered at both relays');
    await cl.relays[1]!.server.stop(false); // the agent still believes it is registered there
    const t0 = performance.now();
    await a.stop();
    expect(performance.now() - t0).toBeLessThan(2000);
    await waitFor(() => cl.relays[0]!.server.lookup(key(cl, 0)) === undefined, 1000, 'the live relay forgets the agent');
    expect(cl.relays[0]!.server.counters.leaves).toBe(1);
  });
});
