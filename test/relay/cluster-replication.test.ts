// Two relay workers in one process, their cluster messages routed as the primary routes
// them (cluster.ts runPrimary), one delivery per event-loop turn as over IPC, and a worker's
// deliveries can be held back (a slow worker). What the other workers see of an agent's
// registration and accept set, message by message (the process-level test:
// cluster.test.ts).
import { describe, it, expect, afterEach } from 'vitest';
import { RelayServer } from '../../src/relay/server.js';
import type { ClusterLink, ClusterMessage } from '../../src/relay/cluster.js';
import { newCookieSecret } from '../../src/relay/cookie.js';
import { generateKeyPair } from '../../src/noise/index.js';
import { FRAME_LEAVE } from '../../src/relay/wire.js';
import type { ControlKeys } from '../../src/relay/control-auth.js';
import { startAgent, registered, waitFor, type Relay, type Agent } from './helpers.js';

interface Worker { server: RelayServer; relay: Relay; handlers: Array<(m: ClusterMessage) => void>; held: ClusterMessage[] | undefined }

/** `n` workers and a router; `hold(i)` queues what worker i would receive until `release(i)`. */
async function cluster(n: number) {
  const secret = newCookieSecret();
  const workers: Worker[] = [];
  const deliver = (to: number, m: ClusterMessage): void => {
    const w = workers[to]!;
    if (w.held) { w.held.push(m); return; }
    setImmediate(() => { for (const h of w.handlers) h(structuredClone(m)); });
  };
  const route = (from: number, m: ClusterMessage): void => {
    if (m.t === 'counters') return;
    if ('to' in m) { deliver(m.to, m); return; }
    let sent = 0;
    for (let j = 0; j < workers.length; j++) if (j !== from) { deliver(j, m); sent++; }
    if (m.t === 'accept' && m.seq !== undefined) deliver(from, { t: 'acceptSent', to: from, seq: m.seq, n: sent });
  };
  const key = generateKeyPair();
  for (let i = 0; i < n; i++) {
    const handlers: Worker['handlers'] = [];
    const link: ClusterLink = {
      workerId: i, workers: n, udpReusePort: undefined, bound: () => {}, cookieSecret: secret,
      send: (m) => route(i, m), onMessage: (h) => { handlers.push(h); },
    };
    const server = new RelayServer({ keyPair: key, udp: { host: '127.0.0.1', port: 0 }, cluster: link });
    const { udpPort } = await server.start();
    workers.push({ server, relay: { server, key, udpPort, httpPort: 0, stunAltPort: undefined }, handlers, held: undefined });
  }
  return {
    workers,
    hold: (i: number): void => { workers[i]!.held = []; },
    release: (i: number): void => { const q = workers[i]!.held ?? []; workers[i]!.held = undefined; for (const m of q) deliver(i, m); },
    /** run `f` on every message worker i handles, after it handled it */
    after: (i: number, f: (m: ClusterMessage) => void): void => { workers[i]!.handlers.push(f); },
    stop: async (): Promise<void> => { for (const w of workers) await w.server.stop(false); },
  };
}

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => { for (const c of cleanup.splice(0).reverse()) await c(); });

/** An agent registered at worker 0 over UDP, once every worker of `c` knows its key. */
async function agentAtEveryWorker(c: Awaited<ReturnType<typeof cluster>>): Promise<Agent> {
  const a = await startAgent(c.workers[0]!.relay, 'udp');
  cleanup.push(() => a.close());
  await registered(a);
  await waitFor(() => c.workers.every((w) => w.server.lookup(a.keyB64) !== undefined), 2000, 'the key at every worker');
  return a;
}

describe('relay cluster replication', () => {
  it('a key registering again at its worker (a NAT rebinding) never goes missing at the other workers', async () => {
    const c = await cluster(2);
    cleanup.push(c.stop);
    const a = await agentAtEveryWorker(c);
    // from now on, after every message worker 1 handles, the key must still be there
    const missingAfter: string[] = [];
    c.after(1, (m) => { if (!c.workers[1]!.server.lookup(a.keyB64)) missingAfter.push(m.t); });
    // the same key from a new address:port: what a NAT rebinding looks like to the relay
    const moved: Agent = await startAgent(c.workers[0]!.relay, 'udp', { keyPair: a.key });
    cleanup.push(() => moved.close());
    await registered(moved);
    const port = moved.socket!.address().port;
    await waitFor(() => c.workers[1]!.server.lookup(a.keyB64)?.port === port, 2000, 'worker 1 has the new binding');
    expect(c.workers[0]!.server.lookup(a.keyB64)?.port).toBe(port);
    expect(missingAfter).toEqual([]);
  });

  it('ACCEPT_ACK comes once every other worker holds the accept set', async () => {
    const c = await cluster(3);
    cleanup.push(c.stop);
    const a = await agentAtEveryWorker(c);
    // worker 2 is slow: the set reaches worker 1 at once, worker 2 only when released
    c.hold(2);
    a.client.setAcceptFrom([generateKeyPair().publicKey].map((k) => Buffer.from(k).toString('base64')));
    await waitFor(() => c.workers[1]!.server.lookup(a.keyB64)?.accepting === 1, 2000, 'worker 1 holds the set');
    await new Promise((r) => setTimeout(r, 300));
    expect(c.workers[2]!.server.lookup(a.keyB64)?.accepting).toBeUndefined();
    expect(a.client.acceptSetAcknowledged).toBe(false);
    c.release(2);
    await waitFor(() => a.client.acceptSetAcknowledged, 3000, 'ACCEPT_ACK after worker 2 confirmed');
    expect(c.workers[2]!.server.lookup(a.keyB64)?.accepting).toBe(1);
  });

  it('a LEAVE read by a worker without the agent\'s keys goes to its owner and removes the agent at every worker; a bad one removes nothing', async () => {
    const c = await cluster(2);
    cleanup.push(c.stop);
    const a = await agentAtEveryWorker(c);
    // from the agent's own address:port to worker 1's socket: what the kernel does when it
    // hands the agent's datagram to another worker
    const ctl = (a.client as unknown as { ctl: ControlKeys }).ctl;
    const toWorker1 = (f: Uint8Array): void => { a.socket!.send(f, c.workers[1]!.relay.udpPort, '127.0.0.1'); };
    const bad = Buffer.from(ctl.seal(FRAME_LEAVE)); bad[bad.length - 1]! ^= 1;
    toWorker1(bad);
    await waitFor(() => c.workers[0]!.server.counters.drops.bad_auth === 1, 2000, 'the owner refuses the bad LEAVE');
    expect(c.workers.every((w) => w.server.lookup(a.keyB64) !== undefined)).toBe(true);
    toWorker1(ctl.seal(FRAME_LEAVE));
    await waitFor(() => c.workers.every((w) => w.server.lookup(a.keyB64) === undefined), 2000, 'the key gone at every worker');
    expect(c.workers[0]!.server.counters.leaves).toBe(1);
    expect(c.workers[1]!.server.counters.drops.bad_auth).toBe(0);
  });
});
