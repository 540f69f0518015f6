// The relay's hardening, in process (docs/protocol/relay.md): each case is an attack of
// issue 12 reduced to its mechanism. A datagram handed to client.handleDatagram() is what
// the agent's demultiplexer passes on for anything arriving from the relay's address, so
// it stands for a packet spoofed from the relay.
import { describe, it, expect, afterEach, vi } from 'vitest';
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import WebSocket from 'ws';
import { startRelay, startAgent, registered, waitFor, type Relay, type Agent } from './helpers.js';
import { HandshakeState, generateKeyPair } from '../../src/noise/index.js';
import {
  FRAME_CHALLENGE, FRAME_PEER_GONE, FRAME_RESTARTING, FRAME_KEY_CONFLICT, encodeAuthFrame, encodeChallenge,
  encodeHello, encodeNotRegistered, encodeRegister,
} from '../../src/relay/wire.js';
import { encodeBindingRequest, newTransactionId } from '../../src/stun/codec.js';

const relays: Relay[] = [];
const agents: Agent[] = [];
const socks: dgram.Socket[] = [];
afterEach(async () => {
  for (const a of agents.splice(0)) a.close();
  for (const s of socks.splice(0)) try { s.close(); } catch { /* closed */ }
  for (const r of relays.splice(0)) await r.server.stop(false);
  vi.restoreAllMocks();
});

async function relay(opts: Parameters<typeof startRelay>[0] = {}): Promise<Relay> { const r = await startRelay(opts); relays.push(r); return r; }
async function agent(r: Relay, t: 'udp' | 'ws' | 'auto' = 'udp', extra: Parameters<typeof startAgent>[2] = {}): Promise<Agent> {
  const a = await startAgent(r, t, extra); agents.push(a); return a;
}
async function socketOn(host: string): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((res) => s.bind(0, host, () => res()));
  socks.push(s);
  return s;
}
const rnd = (n: number): Uint8Array => crypto.getRandomValues(new Uint8Array(n));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** HELLO from `s`, then the cookie of the CHALLENGE. */
async function cookieFor(s: dgram.Socket, r: Relay): Promise<Uint8Array> {
  const got = new Promise<Buffer>((res) => s.once('message', res));
  s.send(encodeHello(rnd(8)), r.udpPort, '127.0.0.1');
  const c = await got;
  expect(c[0]).toBe(FRAME_CHALLENGE);
  return new Uint8Array(c.subarray(4, 28));
}

describe('relay -> agent control is authenticated (attack 4)', () => {
  it('version 1 RESTARTING/REJECTED and forged authenticated frames change nothing and are counted', async () => {
    const r = await relay();
    const a = await agent(r), b = await agent(r);
    await Promise.all([registered(a), registered(b)]);
    const states: string[] = [];
    a.client.on('state', (s) => states.push(s));
    const gone: string[] = [];
    a.client.on('peerGone', (k) => gone.push(k));
    a.client.handleDatagram(new Uint8Array([FRAME_RESTARTING, 0, 0, 0]));
    a.client.handleDatagram(new Uint8Array([0x2b, 1, 0, 0]));
    const s0 = a.client.stats.spoofed;
    for (let i = 1; i <= 50; i++) {
      const f = encodeAuthFrame(i % 3 === 0 ? FRAME_PEER_GONE : i % 3 === 1 ? FRAME_RESTARTING : FRAME_KEY_CONFLICT, i, i % 3 === 0 ? rnd(32) : new Uint8Array(0));
      f.set(rnd(16), f.length - 16);
      a.client.handleDatagram(f);
    }
    expect(a.client.stats.spoofed - s0).toBe(50);
    expect(a.client.state).toBe('registered');
    expect(states).toEqual([]);
    expect(gone).toEqual([]);
    let got = 0;
    b.client.on('packet', () => { got++; });
    expect(a.client.send(b.keyB64, new Uint8Array(8))).toBe(true);
    await waitFor(() => got === 1, 2000, 'forwarding after the spoofed frames');
  });

  it('a stream of spoofed NOT_REGISTERED never unregisters the agent: at most one parallel registration per 5 s', async () => {
    const r = await relay();
    const a = await agent(r), b = await agent(r);
    await Promise.all([registered(a), registered(b)]);
    await sleep(1100); // past the first second, when NOT_REGISTERED is ignored outright
    const states: string[] = [];
    a.client.on('state', (s) => states.push(s));
    const reg0 = r.server.counters.registrations;
    let got = 0;
    b.client.on('packet', () => { got++; });
    for (let i = 0; i < 100; i++) {
      a.client.handleDatagram(encodeNotRegistered());
      a.client.send(b.keyB64, new Uint8Array(4));
      await sleep(10);
    }
    await waitFor(() => got === 100, 3000, 'every packet during the spoofing');
    // never unregistered; at most one renewal announced ('registered' again)
    expect(states.filter((x) => x !== 'registered')).toEqual([]);
    expect(states.length).toBeLessThanOrEqual(1);
    expect(a.client.state).toBe('registered');
    expect(a.client.stats.notRegistered).toBe(100);
    expect(r.server.counters.registrations - reg0).toBeLessThanOrEqual(1);
  });

  it('spoofed CHALLENGEs with a wrong nonce during registration are counted and the agent registers anyway', async () => {
    const r = await relay();
    const a = await agent(r);
    a.client.start();
    for (let i = 0; i < 20; i++) a.client.handleDatagram(encodeChallenge(rnd(24), rnd(8)));
    await waitFor(() => a.client.state === 'registered', 5000, 'registration');
    expect(a.client.stats.spoofed).toBeGreaterThanOrEqual(20);
  });

  it('fuzz: random datagrams at a registered client never throw inside it and never unregister it', async () => {
    const r = await relay();
    const a = await agent(r);
    await registered(a);
    for (let i = 0; i < 3000; i++) {
      const f = rnd(1 + (i % 200));
      f[0] = 0x20 + (i % 32);
      a.client.handleDatagram(f);
    }
    expect(a.client.stats.handlerErrors).toBe(0);
    expect(a.client.state).toBe('registered');
  });
});

describe('registration (attack 5)', () => {
  it('a cookie is spent by its first REGISTER: a garbage handshake cannot reuse it (one DH at most)', async () => {
    const r = await relay();
    const s = await socketOn('127.0.0.1');
    const cookie = await cookieFor(s, r);
    const garbage = encodeRegister(cookie, new Uint8Array(96).fill(9));
    for (let i = 0; i < 10; i++) s.send(garbage, r.udpPort, '127.0.0.1');
    const f = r.server.counters.regFailures;
    await waitFor(() => f.bad_handshake + f.replay === 10, 2000, 'ten refusals');
    expect(f.bad_handshake).toBe(1);
    expect(f.replay).toBe(9);
  });

  it('per-source handshake budget: a flood from one address is refused before DH, another address still registers', async () => {
    const r = await relay({ handshakeRatePerSource: 5 });
    const attacker = await socketOn('127.0.0.2');
    const f = r.server.counters.regFailures;
    const flood = (async () => {
      for (let i = 0; i < 60; i++) {
        const cookie = await cookieFor(attacker, r);
        attacker.send(encodeRegister(cookie, new Uint8Array(96).fill(7)), r.udpPort, '127.0.0.1');
      }
    })();
    // the legitimate agent registers from another source address
    const s = await socketOn('127.0.0.3');
    const kp = generateKeyPair();
    const { RelayClient } = await import('../../src/relay/client.js');
    const c = new RelayClient({ relayKey: r.key.publicKey, keyPair: kp, transport: 'udp', sendUdp: (b) => s.send(b, r.udpPort, '127.0.0.1') });
    s.on('message', (m) => c.handleDatagram(m));
    try {
      c.start();
      await flood;
      await waitFor(() => c.state === 'registered', 5000, 'legitimate registration during the flood');
      await waitFor(() => f.bad_handshake + f.rate_limited === 60, 2000, 'every flood REGISTER refused');
      // burst 2 x 5: at most ~10 plus what refilled during the flood went to DH
      expect(f.bad_handshake).toBeLessThan(25);
      expect(f.rate_limited).toBeGreaterThan(35);
    } finally { c.close(); }
  });

  it('handshake states are zeroed on both sides: success, a failed handshake, an abandoned attempt', async () => {
    const seen = new Set<HandshakeState>();
    const w = HandshakeState.prototype.writeMessage, rd = HandshakeState.prototype.readMessage;
    vi.spyOn(HandshakeState.prototype, 'writeMessage').mockImplementation(function (this: HandshakeState, p) { seen.add(this); return w.call(this, p); });
    vi.spyOn(HandshakeState.prototype, 'readMessage').mockImplementation(function (this: HandshakeState, m) { seen.add(this); return rd.call(this, m); });
    const r = await relay();
    const a = await agent(r);
    await registered(a); // both sides complete
    const s = await socketOn('127.0.0.1');
    s.send(encodeRegister(await cookieFor(s, r), new Uint8Array(96).fill(3)), r.udpPort, '127.0.0.1'); // relay fails
    await waitFor(() => r.server.counters.regFailures.bad_handshake === 1, 2000, 'failed handshake');
    // a client with the wrong relay key never completes (the relay cannot read its message
    // 1); closing it abandons the attempt with its ephemeral key generated
    const wrong = await agent(r, 'udp', { relayKey: generateKeyPair().publicKey });
    wrong.client.start();
    await waitFor(() => r.server.counters.regFailures.bad_handshake === 2, 3000, 'the wrong-key handshake refused');
    wrong.client.close();
    expect(seen.size).toBeGreaterThanOrEqual(4);
    for (const h of seen) {
      const inner = h as unknown as { e?: { privateKey: Uint8Array }; ss: { ck: Uint8Array } };
      expect(inner.ss.ck.every((x) => x === 0)).toBe(true);
      if (inner.e) expect(inner.e.privateKey.every((x) => x === 0)).toBe(true);
    }
  });
});

describe('forwarding limits (attacks 6 and 8)', () => {
  it('many stranger keys cannot push more at one victim than its receive budget', async () => {
    const r = await relay({ destRatePps: 200 });
    const victim = await agent(r);
    const strangers = await Promise.all(Array.from({ length: 10 }, () => agent(r)));
    await Promise.all([victim, ...strangers].map((a) => registered(a)));
    let got = 0;
    victim.client.on('packet', () => { got++; });
    const t0 = performance.now();
    for (let round = 0; round < 5; round++) {
      for (const s of strangers) for (let i = 0; i < 60; i++) s.client.send(victim.keyB64, new Uint8Array(100));
      await sleep(20);
    }
    const seconds = (performance.now() - t0) / 1000;
    await sleep(200);
    // 3000 offered; the budget lets through burst (100) + 200/s
    expect(got).toBeLessThanOrEqual(100 + 200 * (seconds + 0.3) + 5);
    expect(r.server.counters.drops.dest_rate_limited).toBeGreaterThan(2000);
  });

  it('an accept set drops strangers before they touch the victim budget; the peer gets everything', async () => {
    const r = await relay({ destRatePps: 500 });
    const victim = await agent(r), peer = await agent(r);
    const strangers = await Promise.all(Array.from({ length: 5 }, () => agent(r)));
    await Promise.all([victim, peer, ...strangers].map((a) => registered(a)));
    victim.client.setAcceptFrom([peer.keyB64]);
    await waitFor(() => victim.client.acceptSetAcknowledged && r.server.lookup(victim.keyB64)?.accepting === 1, 2000, 'accept set applied');
    const from = new Map<string, number>();
    victim.client.on('packet', (k) => from.set(k, (from.get(k) ?? 0) + 1));
    for (let round = 0; round < 4; round++) {
      for (const s of strangers) for (let i = 0; i < 100; i++) s.client.send(victim.keyB64, new Uint8Array(100));
      for (let i = 0; i < 50; i++) peer.client.send(victim.keyB64, new Uint8Array(100));
      await sleep(20);
    }
    await waitFor(() => (from.get(peer.keyB64) ?? 0) === 200, 3000, 'all of the peer\'s packets');
    expect([...from.keys()]).toEqual([peer.keyB64]);
    expect(r.server.counters.drops.not_accepted).toBe(2000);
    expect(r.server.counters.drops.dest_rate_limited).toBe(0);
    // clearing the set opens the door again
    victim.client.setAcceptFrom(undefined);
    await waitFor(() => victim.client.acceptSetAcknowledged && r.server.lookup(victim.keyB64)?.accepting === undefined, 2000, 'accept set cleared');
  });

  it('the agents behind one source address share its budget', async () => {
    const r = await relay({ sourceRatePps: 100 });
    const dst = await agent(r);
    const a = await agent(r), b = await agent(r);
    await Promise.all([dst, a, b].map((x) => registered(x)));
    for (let i = 0; i < 200; i++) { a.client.send(dst.keyB64, new Uint8Array(10)); b.client.send(dst.keyB64, new Uint8Array(10)); }
    await waitFor(() => r.server.counters.drops.source_rate_limited > 300, 2000, 'source budget');
  });
});

describe('STUN budget (attack 9)', () => {
  it('one source gets at most its budget of answers; another source is still answered', async () => {
    const r = await relay({ stunRatePerSource: 5 });
    const s = await socketOn('127.0.0.4');
    let answers = 0;
    s.on('message', () => { answers++; });
    for (let i = 0; i < 50; i++) s.send(encodeBindingRequest(newTransactionId()), r.udpPort, '127.0.0.1');
    await waitFor(() => r.server.counters.drops.stun_rate_limited + r.server.counters.stunRequests === 50, 2000, 'all requests handled');
    expect(answers).toBeLessThanOrEqual(12);
    const other = await socketOn('127.0.0.5');
    const got = new Promise<Buffer>((res) => other.once('message', res));
    other.send(encodeBindingRequest(newTransactionId()), r.udpPort, '127.0.0.1');
    expect((await got).length).toBeGreaterThan(20);
  });
});

describe('HTTP/WebSocket limits (attack 10)', () => {
  const connect = (port: number, localAddress: string): Promise<net.Socket> => new Promise((res, rej) => {
    const c = net.connect({ port, host: '127.0.0.1', localAddress }, () => res(c));
    c.once('error', rej);
  });
  const closed = (c: net.Socket): Promise<void> => new Promise((res, rej) => {
    if (c.destroyed) { res(); return; }
    const t = setTimeout(() => rej(new Error('connection still open after 3 s')), 3000);
    c.once('close', () => { clearTimeout(t); res(); });
  });

  it('caps connections per source address and in total; refused ones are closed at once and counted', async () => {
    const r = await relay({ maxConnectionsPerSource: 3, maxConnections: 5 });
    const mine: net.Socket[] = [];
    try {
      for (let i = 0; i < 5; i++) mine.push(await connect(r.httpPort, '127.0.0.6'));
      await Promise.all(mine.slice(3).map(closed));
      expect(r.server.counters.httpRefused.per_source).toBe(2);
      for (let i = 0; i < 4; i++) mine.push(await connect(r.httpPort, `127.0.0.${7 + i}`));
      await Promise.all(mine.slice(7).map(closed));
      expect(r.server.counters.httpRefused.total).toBe(2);
      expect(r.server.httpConnections).toBe(5);
    } finally { for (const c of mine) c.destroy(); }
  });

  it('a connection dribbling its headers is closed after the header timeout; an unregistered WebSocket after its own', async () => {
    const r = await relay({ headersTimeoutMs: 400, wsRegisterTimeoutMs: 400 });
    const c = await connect(r.httpPort, '127.0.0.1');
    const t0 = performance.now();
    c.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
    const dribble = setInterval(() => { if (!c.destroyed) c.write('X-A: b\r\n'); }, 100);
    try {
      await closed(c);
      expect(performance.now() - t0).toBeLessThan(3000);
    } finally { clearInterval(dribble); c.destroy(); }
    const ws = new WebSocket(`ws://127.0.0.1:${r.httpPort}/relay`);
    await new Promise((res) => ws.once('open', res));
    const t1 = performance.now();
    await new Promise((res) => ws.once('close', res));
    expect(performance.now() - t1).toBeLessThan(3000);
    await waitFor(() => r.server.httpConnections === 0, 2000, 'connections released');
  });
});

describe('one key in two places (issue 13 item 6)', () => {
  it('registrations of one key from two places evicting each other: both agents told (authenticated), conflict counted once', async () => {
    const r = await relay();
    const key = generateKeyPair();
    const conflicts: number[] = [];
    const seq: Agent[] = [];
    for (let i = 0; i < 4; i++) {
      const a = await agent(r, 'udp', { keyPair: key });
      a.client.on('keyConflict', () => conflicts.push(i));
      seq.push(a);
      await registered(a);
    }
    await waitFor(() => conflicts.length === 2, 2000, 'both told');
    expect(conflicts.sort()).toEqual([2, 3]);
    expect(r.server.counters.keyConflicts).toBe(1);
    expect(r.server.agentCount).toBe(1);
  });
});
