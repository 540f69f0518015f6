// Every kind of bad input: the relay stays up, drops it, and counts it by reason.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as dgram from 'node:dgram';
import WebSocket from 'ws';
import { startRelay, startAgent, registered, waitFor, type Relay, type Agent } from './helpers.js';
import { encodeBindingRequest, newTransactionId, parseStun } from '../../src/stun/codec.js';
import {
  FRAME_REGISTER, FRAME_SEND, FRAME_NOT_REGISTERED, encodeHello, encodeRegister, encodeSend, REGISTER_SIZE, SEND_HEADER_SIZE, DEFAULT_MAX_PAYLOAD,
} from '../../src/relay/wire.js';
import { PeerKey } from '../../src/common/peer-key.js';
import { generateKeyPair } from '../../src/noise/index.js';

async function rawSocket(): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  return s;
}

async function stunStillAnswers(relay: Relay): Promise<void> {
  const s = await rawSocket();
  try {
    const got = new Promise<Buffer>((r) => s.once('message', r));
    s.send(encodeBindingRequest(newTransactionId()), relay.udpPort, '127.0.0.1');
    const resp = await Promise.race([got, new Promise<never>((_, rej) => setTimeout(() => rej(new Error('relay did not answer STUN')), 2000))]);
    expect(parseStun(resp).ok).toBe(true);
  } finally { s.close(); }
}

describe('relay under bad input', () => {
  let relay: Relay;
  const agents: Agent[] = [];
  const socks: dgram.Socket[] = [];
  beforeAll(async () => { relay = await startRelay({ maxPayload: 1400 }); });
  afterAll(async () => {
    for (const a of agents) a.close();
    for (const s of socks) try { s.close(); } catch { /* closed */ }
    await relay.server.stop(false);
  });
  const c = (): Relay['server']['counters'] => relay.server.counters;

  it('unknown first byte, short/garbage frames: dropped by reason', async () => {
    const s = await rawSocket(); socks.push(s);
    const u0 = c().drops.unknown_type, m0 = c().drops.malformed;
    s.send(Buffer.from([0x50, 1, 2, 3]), relay.udpPort, '127.0.0.1');
    s.send(Buffer.from([0x20, 0, 0]), relay.udpPort, '127.0.0.1'); // short HELLO
    await waitFor(() => c().drops.unknown_type === u0 + 1 && c().drops.malformed === m0 + 1, 2000, 'drop counters');
  });

  it('random datagrams (fuzz) never crash the relay', async () => {
    const s = await rawSocket(); socks.push(s);
    for (let i = 0; i < 2000; i++) {
      const b = Buffer.from(crypto.getRandomValues(new Uint8Array(1 + (i % 300))));
      if (i % 3 === 0) b[0] = 0x20 + (i % 32); // aim at relay frame types
      s.send(b, relay.udpPort, '127.0.0.1');
    }
    await new Promise((r) => setTimeout(r, 200));
    await stunStillAnswers(relay);
    // every datagram went through a parser that returned a typed drop: none threw inside
    // the handler (the catch-all counts those separately, and there must be none)
    expect(c().handlerErrors).toBe(0);
  });

  it('SEND from an unregistered (or spoofed) address: dropped as unregistered, told NOT_REGISTERED', async () => {
    const s = await rawSocket(); socks.push(s);
    const before = c().drops.unregistered;
    const reply = new Promise<Buffer>((r) => s.once('message', r));
    s.send(encodeSend(new Uint8Array(8), new Uint8Array(32), new Uint8Array(100)), relay.udpPort, '127.0.0.1');
    expect((await reply)[0]).toBe(FRAME_NOT_REGISTERED);
    expect(c().drops.unregistered).toBe(before + 1);
  });

  it('forged cookie, replayed registration and registration from another address are refused before DH', async () => {
    const frames: Buffer[] = [];
    const a = await startAgent(relay, 'udp');
    agents.push(a);
    const origSend = a.socket!;
    // capture the agent's REGISTER frame as it goes out
    const sendUdp = (f: Uint8Array): void => { frames.push(Buffer.from(f)); origSend.send(f, relay.udpPort, '127.0.0.1'); };
    (a.client as unknown as { sendUdpFn: (f: Uint8Array) => void }).sendUdpFn = sendUdp;
    await registered(a);
    const reg = frames.find((f) => f[0] === FRAME_REGISTER)!;
    expect(reg.length).toBe(REGISTER_SIZE);
    const r0 = { ...c().regFailures };
    // replay from the same address
    origSend.send(reg, relay.udpPort, '127.0.0.1');
    // replay from another address (cookie is bound to the source)
    const s = await rawSocket(); socks.push(s);
    s.send(reg, relay.udpPort, '127.0.0.1');
    // forged cookie
    const forged = Buffer.from(reg); forged[14] ^= 0xff; // a MAC byte
    s.send(forged, relay.udpPort, '127.0.0.1');
    // garbage handshake with a valid fresh cookie
    const chal = new Promise<Buffer>((r) => s.once('message', r));
    s.send(encodeHello(), relay.udpPort, '127.0.0.1');
    const cookie = (await chal).subarray(4, 28);
    s.send(encodeRegister(cookie, new Uint8Array(96).fill(9)), relay.udpPort, '127.0.0.1');
    // the copy from another address is refused as a replay: the spent record is checked
    // before the MAC (a replay flood then costs a lookup); the forged one fails the MAC
    await waitFor(() => c().regFailures.replay === r0.replay + 2 && c().regFailures.bad_cookie === r0.bad_cookie + 1
      && c().regFailures.bad_handshake === r0.bad_handshake + 1, 3000, 'registration failure counters');
    expect(a.client.state).toBe('registered');
  });

  it('oversized and truncated SEND from a registered agent are dropped', async () => {
    const a = await startAgent(relay, 'udp');
    agents.push(a);
    await registered(a);
    const o0 = c().drops.oversized, m0 = c().drops.malformed;
    const big = Buffer.alloc(SEND_HEADER_SIZE + 1401); big[0] = FRAME_SEND;
    a.socket!.send(big, relay.udpPort, '127.0.0.1');
    a.socket!.send(Buffer.from([FRAME_SEND, 1, 2]), relay.udpPort, '127.0.0.1');
    expect(a.client.send(a.keyB64, new Uint8Array(DEFAULT_MAX_PAYLOAD + 1))).toBe(false); // the client refuses what no relay forwards
    await waitFor(() => c().drops.oversized === o0 + 1 && c().drops.malformed === m0 + 1, 2000, 'oversize/malformed');
  });

  it('WebSocket: text messages and oversized messages are dropped, relay stays up', async () => {
    const n0 = c().drops.not_binary, o0 = c().drops.oversized;
    const ws = new WebSocket(`ws://127.0.0.1:${relay.httpPort}/relay`);
    await new Promise((r) => ws.once('open', r));
    ws.send('hello');
    await waitFor(() => c().drops.not_binary === n0 + 1, 2000, 'not_binary');
    const closed = new Promise((r) => ws.once('close', r));
    ws.send(Buffer.alloc(64 * 1024, 0x24));
    await closed;
    await waitFor(() => c().drops.oversized === o0 + 1, 2000, 'ws oversized');
    // wrong path is refused
    const bad = new WebSocket(`ws://127.0.0.1:${relay.httpPort}/nope`);
    await new Promise((r) => { bad.once('error', r); bad.once('close', r); });
    await stunStillAnswers(relay);
  });

  it('/healthz and /metrics report state and counters', async () => {
    const h = await (await fetch(`http://127.0.0.1:${relay.httpPort}/healthz`)).json() as { status: string; agents: number; key: string };
    expect(h.status).toBe('ok');
    expect(h.key).toBe(PeerKey.fromBytes(relay.key.publicKey).text);
    const text = await (await fetch(`http://127.0.0.1:${relay.httpPort}/metrics`)).text();
    expect(text).toMatch(/mpyc_relay_registered_agents\{transport="udp"\} \d+/);
    expect(text).toMatch(new RegExp(`mpyc_relay_dropped_total\\{reason="unregistered"\\} ${c().drops.unregistered}`));
    expect(text).toMatch(/mpyc_relay_registration_failures_total\{reason="replay"\} [1-9]/);
    expect(text).toMatch(/mpyc_relay_stun_requests_total [1-9]/);
    expect((await fetch(`http://127.0.0.1:${relay.httpPort}/other`)).status).toBe(404);
  });
});

describe('relay policy', () => {
  it('keys not on the allow-list are rejected and counted', async () => {
    const good = generateKeyPair();
    const relay = await startRelay({ allow: new Set([PeerKey.fromBytes(good.publicKey).text]) });
    const a = await startAgent(relay, 'udp');
    const b = await startAgent(relay, 'udp', { keyPair: good });
    try {
      a.client.start();
      await waitFor(() => a.client.state === 'rejected', 3000, 'rejected');
      expect(relay.server.counters.regFailures.not_allowed).toBe(1);
      await registered(b);
      relay.server.setAllowList(new Set());
      expect(relay.server.agentCount).toBe(0);
    } finally { a.close(); b.close(); await relay.server.stop(false); }
  });

  it('per-agent rate limit drops excess packets', async () => {
    const relay = await startRelay({ ratePps: 10, burst: 5 });
    const a = await startAgent(relay, 'udp');
    const b = await startAgent(relay, 'udp');
    try {
      await Promise.all([registered(a), registered(b)]);
      let got = 0;
      b.client.on('packet', () => { got++; });
      for (let i = 0; i < 50; i++) a.client.send(b.keyB64, new Uint8Array(10));
      await waitFor(() => relay.server.counters.drops.rate_limited >= 40, 2000, 'rate_limited');
      expect(got).toBeLessThanOrEqual(10);
    } finally { a.close(); b.close(); await relay.server.stop(false); }
  });

  it('NAT rebinding: a new registration from a new address replaces the old binding', async () => {
    const relay = await startRelay();
    const key = generateKeyPair();
    const a1 = await startAgent(relay, 'udp', { keyPair: key });
    const a2 = await startAgent(relay, 'udp', { keyPair: key });
    const b = await startAgent(relay, 'udp');
    try {
      await Promise.all([registered(a1), registered(b)]);
      expect(relay.server.lookup(a1.keyB64)?.port).toBe(a1.socket!.address().port);
      await registered(a2);
      expect(relay.server.lookup(a2.keyB64)?.port).toBe(a2.socket!.address().port);
      expect(relay.server.agentCount).toBe(2);
      let got1 = 0, got2 = 0;
      a1.client.on('packet', () => { got1++; });
      a2.client.on('packet', () => { got2++; });
      b.client.send(a2.keyB64, new Uint8Array(5));
      await waitFor(() => got2 === 1, 2000, 'packet at new binding');
      expect(got1).toBe(0);
      // the old address is no longer registered
      const d0 = relay.server.counters.drops.unregistered;
      a1.socket!.send(encodeSend(new Uint8Array(8), b.key.publicKey, new Uint8Array(4)), relay.udpPort, '127.0.0.1');
      await waitFor(() => relay.server.counters.drops.unregistered === d0 + 1, 2000, 'old binding dropped');
    } finally { a1.close(); a2.close(); b.close(); await relay.server.stop(false); }
  });

  it('registrations expire without keepalives', async () => {
    const relay = await startRelay({ expiryS: 1 });
    const a = await startAgent(relay, 'udp', { keepaliveMs: 60_000 });
    try {
      await registered(a);
      expect(relay.server.agentCount).toBe(1);
      await waitFor(() => relay.server.agentCount === 0, 4000, 'expiry');
    } finally { a.close(); await relay.server.stop(false); }
  });

  it('relay crash (no RESTARTING): a keepalive answered NOT_REGISTERED makes the client re-register', async () => {
    const relay = await startRelay();
    const a = await startAgent(relay, 'udp', { keepaliveMs: 200 });
    let server2: Relay['server'] | undefined;
    try {
      await registered(a);
      await relay.server.stop(false);
      const { RelayServer } = await import('../../src/relay/server.js');
      server2 = new RelayServer({ keyPair: relay.key, udp: { host: '127.0.0.1', port: relay.udpPort } });
      await server2.start();
      await waitFor(() => server2!.agentCount === 1 && a.client.stats.registrations === 2 && a.client.state === 'registered', 5000, 're-registration after crash');
    } finally { a.close(); await server2?.stop(false); }
  });

  it('relay restart: clients hear RESTARTING and re-register with the new process (UDP and WS)', async () => {
    const relay = await startRelay();
    const a = await startAgent(relay, 'udp');
    const w = await startAgent(relay, 'ws');
    let relay2: Relay | undefined;
    try {
      await Promise.all([registered(a), registered(w)]);
      const states: string[] = [];
      a.client.on('state', (s) => states.push(s));
      await relay.server.stop(true);
      await waitFor(() => a.client.state === 'registering', 2000, 'udp client noticed restart');
      const { RelayServer } = await import('../../src/relay/server.js');
      const server = new RelayServer({ keyPair: relay.key, udp: { host: '127.0.0.1', port: relay.udpPort }, http: { host: '127.0.0.1', port: relay.httpPort } });
      await server.start();
      relay2 = { ...relay, server };
      await waitFor(() => a.client.state === 'registered' && w.client.state === 'registered' && server.agentCount === 2, 8000, 're-registration');
      expect(states).toContain('registering');
      let got = 0;
      w.client.on('packet', () => { got++; });
      a.client.send(w.keyB64, new Uint8Array(3));
      await waitFor(() => got === 1, 2000, 'packet after restart');
    } finally { a.close(); w.close(); await relay2?.server.stop(false); }
  });
});
