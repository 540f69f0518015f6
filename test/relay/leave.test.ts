// LEAVE (docs/protocol/relay.md, "Leaving"): an agent that stops ends its registration
// at once instead of at expiry, and nobody else can end it. Over both transports: after a
// LEAVE the relay no longer has the key and a peer's SEND to it gets PEER_GONE; a LEAVE with
// a bad tag, another registration's tag or a stale counter is dropped `bad_auth`; a replayed
// LEAVE never ends the registration that followed; a LEAVE from a source with no
// registration changes nothing. Crafted frames go out through the client's own transport
// (its UDP socket or WebSocket): to the relay, the agent's own source.
import { afterEach, describe, expect, it } from 'vitest';
import * as dgram from 'node:dgram';
import { WebSocket } from 'ws';
import { FRAME_LEAVE, FRAME_ACCEPT_FROM, acceptFromBody } from '../../src/relay/wire.js';
import type { ControlKeys } from '../../src/relay/control-auth.js';
import { relayWsUrl, type RelayTransport } from '../../src/relay/client.js';
import { registered, startAgent, startRelay, waitFor, type Agent, type Relay } from './helpers.js';

const relays: Relay[] = [];
const agents: Agent[] = [];
const closers: Array<() => void> = [];
afterEach(async () => {
  for (const c of closers.splice(0)) c();
  for (const a of agents.splice(0)) a.close();
  for (const r of relays.splice(0)) await r.server.stop(false);
});

/** the agent's control keys: seals frames of its registration without the client sending them */
const ctlOf = (a: Agent): ControlKeys => (a.client as unknown as { ctl: ControlKeys }).ctl;
/** send a crafted frame over the agent's current transport, from its own source */
const sendAs = (a: Agent, f: Uint8Array): void => {
  if (!(a.client as unknown as { transmit(f: Uint8Array): boolean }).transmit(f)) throw new Error('not sent');
};
const tampered = (f: Uint8Array): Buffer => { const g = Buffer.from(f); g[g.length - 1]! ^= 1; return g; };

async function setup(transport: RelayTransport, n = 2, opts: Parameters<typeof startAgent>[2] = {}): Promise<{ r: Relay; a: Agent[] }> {
  const r = await startRelay();
  relays.push(r);
  const a: Agent[] = [];
  for (let i = 0; i < n; i++) {
    const x = await startAgent(r, transport, opts);
    agents.push(x);
    await registered(x);
    a.push(x);
  }
  return { r, a };
}

/** b sends to a until PEER_GONE for a arrives (each SEND gets at most one; the relay limits them) */
async function peerGone(b: Agent, to: Agent): Promise<void> {
  let gone = false;
  b.client.on('peerGone', (k) => { if (k === to.keyB64) gone = true; });
  await waitFor(() => { if (!gone) b.client.send(to.keyB64, new Uint8Array(8)); return gone; }, 2000, 'PEER_GONE');
}

/** b sends to a until a receives it (the registration still forwards) */
async function delivered(b: Agent, to: Agent): Promise<void> {
  let got = false;
  to.client.on('packet', (from) => { if (from === b.keyB64) got = true; });
  await waitFor(() => { if (!got) b.client.send(to.keyB64, new Uint8Array(8)); return got; }, 2000, 'a forwarded packet');
}

describe.each(['udp', 'ws'] as const)('LEAVE over %s', (transport) => {
  it('removes the registration at once; a peer\'s SEND to the key then gets no_peer and PEER_GONE', async () => {
    const { r, a: [a, b] } = await setup(transport);
    const c = r.server.counters;
    expect(r.server.lookup(a!.keyB64)?.transport).toBe(transport);
    expect(r.server.agentCount).toBe(2);
    const noPeer0 = c.drops.no_peer;
    expect(a!.client.leave()).toBe(true);
    expect(a!.client.state).toBe('closed');
    await waitFor(() => r.server.lookup(a!.keyB64) === undefined, 1000, 'the relay forgets the key');
    expect(r.server.agentCount).toBe(1);
    // by the LEAVE, not by the WebSocket closing after it (which removes an agent uncounted)
    expect(c.leaves).toBe(1);
    expect(c.drops.bad_auth).toBe(0);
    await peerGone(b!, a!);
    expect(c.drops.no_peer).toBeGreaterThan(noPeer0);
    expect(await r.server.metrics.getSingleMetricAsString('mpyc_relay_leaves_total')).toMatch(/^mpyc_relay_leaves_total 1$/m);
  });

  it('with a bad tag, or another registration\'s, is dropped bad_auth: the agent stays registered and still receives', async () => {
    const { r, a: [a, b, other] } = await setup(transport, 3);
    const c = r.server.counters;
    sendAs(a!, tampered(ctlOf(a!).seal(FRAME_LEAVE)));
    await waitFor(() => c.drops.bad_auth === 1, 1000, 'bad_auth for the tampered LEAVE');
    // a valid LEAVE of a's, but from another registered agent: checked against that agent's keys
    sendAs(other!, ctlOf(a!).seal(FRAME_LEAVE));
    await waitFor(() => c.drops.bad_auth === 2, 1000, 'bad_auth for a LEAVE of another registration');
    expect(c.leaves).toBe(0);
    expect(r.server.agentCount).toBe(3);
    expect(r.server.lookup(a!.keyB64)).toBeDefined();
    expect(r.server.lookup(other!.keyB64)).toBeDefined();
    await delivered(b!, a!);
    await delivered(b!, other!);
  });

  it('with a stale counter is dropped bad_auth; replayed after the agent registered again it ends nothing', async () => {
    // PINGs every 200 ms: once the relay forgot the agent, its NOT_REGISTERED answer starts a new registration
    const { r, a: [a, b] } = await setup(transport, 2, { keepaliveMs: 200 });
    const c = r.server.counters;
    const stale = ctlOf(a!).seal(FRAME_LEAVE);
    sendAs(a!, ctlOf(a!).seal(FRAME_ACCEPT_FROM, acceptFromBody([]))); // a newer counter, accepted
    sendAs(a!, stale);
    await waitFor(() => c.drops.bad_auth === 1, 1000, 'bad_auth for the stale LEAVE');
    expect(r.server.lookup(a!.keyB64)).toBeDefined();
    expect(c.leaves).toBe(0);

    // the same bytes twice: the first ends the registration...
    const leave = ctlOf(a!).seal(FRAME_LEAVE);
    sendAs(a!, leave);
    await waitFor(() => c.leaves === 1, 1000, 'the LEAVE');
    expect(r.server.lookup(a!.keyB64)).toBeUndefined();
    // ...the client did not mean to leave: it registers again from the same source
    await waitFor(() => a!.client.stats.registrations === 2 && r.server.lookup(a!.keyB64) !== undefined, 5000, 'a new registration');
    // ...and the second copy fails the new registration's keys (an on-path replay)
    sendAs(a!, leave);
    await waitFor(() => c.drops.bad_auth === 2, 1000, 'bad_auth for the replayed LEAVE');
    expect(c.leaves).toBe(1);
    expect(r.server.lookup(a!.keyB64)).toBeDefined();
    await delivered(b!, a!);
  });

  it('from a source with no registration changes nothing (and is not answered)', async () => {
    const { r, a: [a] } = await setup(transport, 1);
    const c = r.server.counters;
    const leave = ctlOf(a!).seal(FRAME_LEAVE); // valid, but sent by a stranger first
    const answers: Buffer[] = [];
    if (transport === 'udp') {
      const s = dgram.createSocket('udp4');
      closers.push(() => s.close());
      await new Promise<void>((res) => s.bind(0, '127.0.0.1', () => res()));
      s.on('message', (m) => answers.push(m));
      s.send(leave, r.udpPort, '127.0.0.1');
    } else {
      const ws = new WebSocket(relayWsUrl('127.0.0.1', r.httpPort));
      closers.push(() => ws.terminate());
      await new Promise((res, rej) => { ws.once('open', res); ws.once('error', rej); });
      ws.on('message', (m: Buffer) => answers.push(m));
      ws.send(leave);
    }
    await waitFor(() => c.drops.unregistered === 1, 1000, 'the stranger\'s LEAVE dropped unregistered');
    await new Promise((res) => setTimeout(res, 100));
    expect(answers).toEqual([]); // no NOT_REGISTERED
    expect(c.drops.bad_auth).toBe(0);
    expect(c.leaves).toBe(0);
    expect(r.server.lookup(a!.keyB64)).toBeDefined();
    // the same bytes from the agent's own source: the frame was valid, the source was not
    sendAs(a!, leave);
    await waitFor(() => r.server.lookup(a!.keyB64) === undefined, 1000, 'the agent\'s own LEAVE');
    expect(c.leaves).toBe(1);
  });
});

describe('RelayClient.leave()', () => {
  it('never throws: with its UDP socket closed it sends nothing, closes, and the relay keeps the key until expiry', async () => {
    const { r, a: [a] } = await setup('udp', 1);
    a!.socket!.close();
    expect(a!.client.leave()).toBe(false);
    expect(a!.client.state).toBe('closed');
    expect(a!.client.leave()).toBe(false); // closed already: nothing again
    await new Promise((res) => setTimeout(res, 100));
    expect(r.server.lookup(a!.keyB64)).toBeDefined();
    expect(r.server.counters.leaves).toBe(0);
  });
});
