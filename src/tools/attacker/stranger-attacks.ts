// Attacks of strangers: anyone who can reach the relay, with keys of their own that no
// session lists (issue #12 rows 5, 6, 10). Registrations use the real relay client.
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import { generateKeyPair } from '../../noise/index.js';
import { RelayClient } from '../../relay/index.js';
import { COOKIE_SIZE, FRAME_CHALLENGE, IK_MSG1_SIZE, encodeHello, encodeRegister } from '../../relay/wire.js';
import type { Endpoint } from './raw-udp.js';
import { bindUdp } from './spoof-attacks.js';
import { paced, randomBytes, sleep, type Budget } from './pace.js';

/** the CHALLENGE's cookie starts after its 4-byte header (docs/protocol/relay.md) */
const CHALLENGE_COOKIE_OFFSET = 4;

export function nextFrame(s: dgram.Socket, type: number, ms: number): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const on = (m: Buffer): void => { if (m[0] === type) { clearTimeout(t); s.off('message', on); resolve(m); } };
    const t = setTimeout(() => { s.off('message', on); resolve(undefined); }, ms);
    s.on('message', on);
  });
}

export async function fetchCookie(s: dgram.Socket, relay: Endpoint): Promise<Uint8Array | undefined> {
  const got = nextFrame(s, FRAME_CHALLENGE, 1000);
  s.send(encodeHello(), relay.port, relay.address);
  const c = await got;
  return c && new Uint8Array(c.subarray(CHALLENGE_COOKIE_OFFSET, CHALLENGE_COOKIE_OFFSET + COOKIE_SIZE));
}

/**
 * Row 5: REGISTER frames with a garbage handshake, `perCookie` of them reusing each valid
 * cookie (HELLO again for the next), at `pps`. A relay that keeps a cookie valid until a
 * handshake succeeds pays a DH for every one.
 */
export async function registerFlood(o: { relay: Endpoint; pps: number; perCookie: number }, budget: Budget): Promise<{ sent: number; cookies: number }> {
  const s = await bindUdp('127.0.0.2');
  let cookies = 0;
  let cookie: Uint8Array | undefined;
  let used = 0;
  const sent = await paced(budget, o.pps, async () => {
    if (!cookie || used >= o.perCookie) {
      cookie = await fetchCookie(s, o.relay);
      used = 0;
      if (!cookie) return 0;
      cookies++;
    }
    const frame = encodeRegister(cookie, randomBytes(IK_MSG1_SIZE));
    for (let i = 0; i < 25; i++) s.send(frame, o.relay.port, o.relay.address);
    used += 25;
    return 25;
  });
  s.close();
  return { sent, cookies };
}

export interface RegisteredStranger { client: RelayClient; sock: dgram.Socket }

/** `count` fresh keys registered over UDP, from 127.0.1.x (the real client, no session). */
export async function registerStrangers(o: { relay: Endpoint; relayKey: string; count: number; timeoutMs: number }): Promise<RegisteredStranger[]> {
  const all = await Promise.all(Array.from({ length: o.count }, async (_, i) => {
    const sock = await bindUdp(`127.0.1.${1 + (i % 250)}`);
    const client = new RelayClient({ relayKey: o.relayKey, keyPair: generateKeyPair(), transport: 'udp', sendUdp: (f) => sock.send(f, o.relay.port, o.relay.address) });
    sock.on('message', (m) => { if (m.length > 0 && m[0]! >= 0x20 && m[0]! <= 0x3f) client.handleDatagram(m); });
    client.start();
    const t0 = performance.now();
    while (client.state !== 'registered' && performance.now() - t0 < o.timeoutMs) await sleep(10);
    if (client.state === 'registered') return { client, sock };
    client.close();
    sock.close();
    return undefined;
  }));
  return all.filter((x): x is RegisteredStranger => x !== undefined);
}

/**
 * Row 6: registered stranger keys all sending `payloadBytes` SEND frames to one victim key,
 * `pps` packets per second in total, each through its own client (its frames carry its
 * registration token, as a real agent's do).
 */
export async function strangerFlood(strangers: RegisteredStranger[], o: { relay: Endpoint; victimKey: Uint8Array; payloadBytes: number; pps: number }, budget: Budget): Promise<{ sent: number }> {
  const payload = randomBytes(o.payloadBytes);
  const sent = await paced(budget, o.pps, () => {
    for (const s of strangers) s.client.send(o.victimKey, payload);
    return strangers.length;
  });
  return { sent };
}

/**
 * Row 10: `connections` TCP connections to the relay's HTTP port from `sources` loopback
 * addresses, `opensPerS` a second: half idle (nothing sent), half sending a request line
 * and then dribbling one header byte every 500 ms. Counts how many the relay still holds
 * at the end.
 */
export async function httpHold(o: { http: Endpoint; connections: number; sources: number; opensPerS: number }, budget: Budget): Promise<{ opened: number; closedByRelay: number; stillOpen: number }> {
  const conns: net.Socket[] = [];
  const dribbling: net.Socket[] = [];
  const r = { opened: 0, closedByRelay: 0, stillOpen: 0 };
  let ending = false;
  for (let i = 0; i < o.connections && performance.now() < budget.deadline; i++) {
    const c = net.connect({ host: o.http.address, port: o.http.port, localAddress: `127.0.3.${1 + (i % o.sources)}` });
    c.on('error', () => { /* counted on close */ });
    c.on('close', () => { if (!ending) r.closedByRelay++; });
    c.on('connect', () => { r.opened++; if (i % 2 === 0) c.write('GET /metrics HTTP/1.1\r\n'); });
    conns.push(c);
    if (i % 2 === 0) dribbling.push(c);
    // opened at a steady rate: the attack is holding them, not a connection burst
    if (i % 10 === 9) await sleep(10_000 / o.opensPerS);
  }
  while (performance.now() < budget.deadline) {
    for (const c of dribbling) if (!c.destroyed && c.writable) c.write('X');
    await sleep(500);
  }
  r.stillOpen = conns.filter((c) => !c.destroyed).length;
  ending = true;
  for (const c of conns) c.destroy();
  return r;
}
