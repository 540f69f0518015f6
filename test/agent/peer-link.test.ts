// A peer's liveness on a fake clock: waiting (with a periodic line), connected, offline,
// and local connections closed after the offline bound; pings resolve or time out.
import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { PeerKey } from '../../src/common/peer-key.js';
import { generateKeyPair } from '../../src/noise/index.js';
import { PeerLink, PING_TIMEOUT_MS, WAITING_LOG_MS, type LinkContext, type Route } from '../../src/agent/peer-link.js';
import { decodeInner, encodeProbe } from '../../src/agent/inner.js';
import type { PeerStreams } from '../../src/agent/streams.js';

function setup(opts: { offlineAfterMs?: number; offlineCloseMs?: number } = {}) {
  const lines: { level: number; msg: string }[] = [];
  const logger = pino({ level: 'info' }, { write: (s: string) => { lines.push(JSON.parse(s) as { level: number; msg: string }); } });
  const sent: { plaintext: Uint8Array; to?: Route }[] = [];
  const closed: string[] = [];
  const streams = { localSockets: 1, closeLocal: (why: string) => { closed.push(why); streams.localSockets = 0; }, receive: () => {} };
  const ctx: LinkContext = {
    send: (plaintext, to) => { sent.push({ plaintext, to }); return true; },
    established: () => true,
    localCandidates: () => [],
    relayMask: () => 1,
    activeRoute: () => ({ kind: 'relay', relay: 0 }),
    expand: (c) => [c],
    onRttSample: () => {},
    reschedule: () => {},
    logger, relayOnly: true,
    offlineAfterMs: opts.offlineAfterMs ?? 15_000,
    offlineCloseMs: opts.offlineCloseMs ?? 15_000,
  };
  const link = new PeerLink(2, 'carol', PeerKey.fromBytes(generateKeyPair().publicKey), streams as unknown as PeerStreams, ctx, 0, 1, true);
  /** runs the link's timers from `from` to `to` the way the agent does: at each deadline */
  const run = (from: number, to: number): void => {
    let now = from;
    for (let guard = 0; guard < 10_000; guard++) {
      const d = link.nextDeadline();
      if (d > to) return;
      now = Math.max(now, d);
      link.poll(now);
    }
    throw new Error('deadline did not advance');
  };
  return { link, lines, sent, closed, run };
}

describe('PeerLink liveness', () => {
  it('waiting → periodic "still waiting" line → connected ("peer connected") → offline ("peer offline") → local connections closed', () => {
    const { link, lines, closed, run } = setup({ offlineAfterMs: 10_000, offlineCloseMs: 5_000 });
    expect(link.liveness).toBe('waiting');
    run(0, 3.5 * WAITING_LOG_MS);
    expect(lines.filter((l) => l.msg === 'still waiting for party 2')).toHaveLength(3);
    const t1 = 3.5 * WAITING_LOG_MS;
    link.heard(t1);
    expect(link.liveness).toBe('connected');
    expect(lines.at(-1)).toMatchObject({ msg: 'peer connected' });
    // heard every 4 s: stays connected
    for (let t = t1; t < t1 + 40_000; t += 4_000) { run(t, t + 4_000); link.heard(t + 4_000); }
    expect(link.liveness).toBe('connected');
    const t2 = t1 + 40_000;
    run(t2, t2 + 9_999);
    expect(link.liveness).toBe('connected');
    run(t2 + 9_999, t2 + 10_000);
    expect(link.liveness).toBe('offline');
    expect(lines.at(-1)).toMatchObject({ msg: 'peer offline', level: 40 });
    expect(closed).toEqual([]);
    run(t2 + 10_000, t2 + 14_999);
    expect(closed).toEqual([]);
    run(t2 + 14_999, t2 + 15_000);
    expect(closed).toEqual(['party 2 offline for 5 s']);
    // it comes back
    link.heard(t2 + 20_000);
    expect(link.liveness).toBe('connected');
    expect(lines.filter((l) => l.msg === 'still waiting for party 2')).toHaveLength(3);
  });

  it('a ping resolves with its RTT on a pong, or as lost after the timeout; a peer\'s ping is answered where it came from', async () => {
    const { link, sent, run } = setup();
    const p = link.ping(1_000);
    const ping = decodeInner(sent.at(-1)!.plaintext);
    expect(ping).toMatchObject({ type: 'ping' });
    expect(sent.at(-1)!.to).toBeUndefined(); // the active route, as data
    link.onPlaintext(encodeProbe('pong', (ping as { id: Uint8Array }).id), { kind: 'relay', relay: 0 }, 1_012, () => {});
    expect(await p).toEqual({ rttMs: 12, route: { kind: 'relay', relay: 0 } });
    const lost = link.ping(2_000);
    run(2_000, 2_000 + PING_TIMEOUT_MS);
    expect(await lost).toMatchObject({ rttMs: undefined });
    const from: Route = { kind: 'direct', address: '192.0.2.1', port: 5 };
    link.onPlaintext(encodeProbe('ping', new Uint8Array(8).fill(3)), from, 3_000, () => {});
    expect(sent.at(-1)!.to).toEqual(from);
    expect(decodeInner(sent.at(-1)!.plaintext)).toEqual({ type: 'pong', id: new Uint8Array(8).fill(3) });
  });
});
