// LocalConnector (src/agent/local-connector.ts): streams waiting for a local listener
// that is not up yet are connected as soon as it listens (a fast probe per target), one
// connection each; kick() probes at once; the probe interval never exceeds MPyC's own
// retry; a cancelled wait never gets a socket.
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_PROBE_SCHEDULE, LocalConnector, nextProbeDelay } from '../../src/agent/local-connector.js';
import { MPYC_RETRY_MS } from '../../src/tools/mpyc-wire.js';
import { quietLogger, waitFor } from './helpers.js';
import { freeBase } from '../tools/ports.js';

const servers: Server[] = [];
const sockets: Socket[] = [];
let connector: LocalConnector | undefined;
afterEach(() => {
  connector?.stop();
  for (const s of sockets) s.destroy();
  for (const s of servers) s.close();
  servers.length = sockets.length = 0;
});

function listen(port: number): Promise<{ accepted: () => number }> {
  let n = 0;
  const srv = createServer((s) => { n++; sockets.push(s); });
  servers.push(srv);
  return new Promise((r) => srv.listen(port, '127.0.0.1', () => r({ accepted: () => n })));
}

describe('LocalConnector', () => {
  it('connects every waiting stream within a few ms of the listener appearing, one connection each', async () => {
    const port = await freeBase(1);
    connector = new LocalConnector(quietLogger);
    const got: number[] = [];
    for (let i = 0; i < 3; i++) connector.connect({ host: '127.0.0.1', port }, (s) => { sockets.push(s); got.push(performance.now()); });
    await new Promise((r) => setTimeout(r, 100)); // refused meanwhile
    expect(got).toEqual([]);
    const listeningAt = performance.now();
    const srv = await listen(port);
    await waitFor(() => got.length === 3, 2000, 'three connections');
    // the fast probe (PROBE_FAST_MS) finds it at once; a 10 ms, doubling retry would often not
    expect(Math.max(...got) - listeningAt).toBeLessThan(50);
    await waitFor(() => srv.accepted() === 3, 1000, 'accepted');
    await new Promise((r) => setTimeout(r, 50));
    expect(srv.accepted()).toBe(3); // no spare connection
  });

  it('kick() probes at once, even when the probe has backed off', async () => {
    const port = await freeBase(1);
    // a stretched schedule: after the first refusal the next probe is 5 s away
    connector = new LocalConnector(quietLogger, { fastMs: 5_000, fastForMs: 0, slowMaxMs: 5_000 });
    let at = 0;
    connector.connect({ host: '127.0.0.1', port }, (s) => { sockets.push(s); at = performance.now(); });
    await new Promise((r) => setTimeout(r, 100));
    await listen(port);
    const kickedAt = performance.now();
    connector.kick();
    await waitFor(() => at > 0, 3000, 'connected');
    expect(at - kickedAt).toBeLessThan(1000);
  }, 10_000);

  it('the default schedule probes every 2 ms for the first second, and later never less often than MPyC retries', () => {
    // the highest-index party only listens, so its agent learns that it started from a
    // probe alone: a probe interval above MPyC's own retry would make a late party's first
    // round wait longer through the agents than over plain TCP
    let waited = 0, delay = DEFAULT_PROBE_SCHEDULE.fastMs, probes = 0, longest = 0;
    while (waited < 10 * 60_000) {
      delay = nextProbeDelay(DEFAULT_PROBE_SCHEDULE, waited, delay);
      if (waited < 1_000) expect(delay).toBe(2);
      longest = Math.max(longest, delay);
      waited += delay;
      probes++;
    }
    expect(longest).toBeLessThanOrEqual(MPYC_RETRY_MS);
    // and it does back off: ten minutes take ~6500 probes, not the 300 000 of a fixed 2 ms
    expect(probes).toBeLessThan(10_000);
  });

  it('a cancelled wait never gets a socket; the others still do', async () => {
    const port = await freeBase(1);
    connector = new LocalConnector(quietLogger);
    let cancelledGot = 0, kept = 0;
    const cancel = connector.connect({ host: '127.0.0.1', port }, () => { cancelledGot++; });
    connector.connect({ host: '127.0.0.1', port }, (s) => { sockets.push(s); kept++; });
    await new Promise((r) => setTimeout(r, 20));
    cancel();
    const srv = await listen(port);
    await waitFor(() => kept === 1, 2000, 'the remaining wait');
    await new Promise((r) => setTimeout(r, 50));
    expect(cancelledGot).toBe(0);
    expect(srv.accepted()).toBe(1);
  });
});
