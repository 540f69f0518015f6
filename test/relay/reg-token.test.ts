// Issue #13 attack 8: frames from a registered agent's exact address:port without its
// registration token (what an off-path spoofer of that address sends) are dropped
// (`bad_token`) before they are forwarded, charged to the agent's budget or answered. The
// test sends them from the agent's own socket: to the relay that is the same source a
// spoofer forges (tests/adversarial/spoofed-send.test.ts forges it with a raw socket).
import { afterEach, describe, expect, it } from 'vitest';
import * as dgram from 'node:dgram';
import { HandshakeState, generateKeyPair, type KeyPair } from '../../src/noise/index.js';
import {
  COOKIE_SIZE, FRAME_CHALLENGE, FRAME_PONG, FRAME_REGISTERED, NOISE_PROTOCOL, REG_TOKEN_SIZE, TOKEN_SIZE,
  decodeRegisteredPayload, encodeHello, encodePing, encodeRegister, encodeSend, registrationPrologue,
} from '../../src/relay/wire.js';
import { registered, startAgent, startRelay, waitFor, type Agent, type Relay } from './helpers.js';

const relays: Relay[] = [];
const agents: Agent[] = [];
afterEach(async () => {
  for (const a of agents.splice(0)) a.close();
  for (const r of relays.splice(0)) await r.server.stop(false);
});

const rnd = (n: number): Uint8Array => crypto.getRandomValues(new Uint8Array(n));

function next(s: dgram.Socket, type: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => { s.off('message', on); reject(new Error(`no frame 0x${type.toString(16)}`)); }, 2000);
    const on = (m: Buffer): void => { if (m[0] === type) { clearTimeout(t); s.off('message', on); resolve(m); } };
    s.on('message', on);
  });
}

/** One registration of `kp` from `s` by hand; resolves with the token REGISTERED carried. */
async function tokenOf(r: Relay, s: dgram.Socket, kp: KeyPair): Promise<string> {
  const challenge = next(s, FRAME_CHALLENGE);
  s.send(encodeHello(), r.udpPort, '127.0.0.1');
  const cookie = (await challenge).subarray(4, 4 + COOKIE_SIZE);
  const hs = new HandshakeState({ protocolName: NOISE_PROTOCOL, initiator: true, prologue: registrationPrologue(cookie), staticKey: kp, remoteStaticKey: r.key.publicKey });
  const answer = next(s, FRAME_REGISTERED);
  s.send(encodeRegister(cookie, hs.writeMessage(new Uint8Array(0))), r.udpPort, '127.0.0.1');
  const p = decodeRegisteredPayload(hs.readMessage((await answer).subarray(4)));
  hs.destroy();
  return Buffer.from(p!.token).toString('hex');
}

describe('the registration token', () => {
  it('SENDs without it are dropped uncharged and unforwarded; a PING without it gets no PONG', async () => {
    // a budget the forged frames would exhaust many times over if they were charged
    const r = await startRelay({ ratePps: 20, burst: 20 });
    relays.push(r);
    const a = await startAgent(r, 'udp'), b = await startAgent(r, 'udp');
    agents.push(a, b);
    await registered(a);
    await registered(b);
    let got = 0;
    b.client.on('packet', () => { got++; });
    const sendFrom = (f: Uint8Array): void => { a.socket!.send(f, r.udpPort, '127.0.0.1'); };
    const c = r.server.counters;
    const bad0 = c.drops.bad_token, limited0 = c.drops.rate_limited;

    const FORGED = 200;
    for (let i = 0; i < FORGED; i++) sendFrom(encodeSend(rnd(REG_TOKEN_SIZE), b.key.publicKey, new Uint8Array(64)));
    await waitFor(() => c.drops.bad_token === bad0 + FORGED, 3000, 'every forged SEND dropped for its token');
    // the agent's own packets still fit in its untouched burst
    for (let i = 0; i < 10; i++) expect(a.client.send(b.keyB64, new Uint8Array(64))).toBe(true);
    await waitFor(() => got === 10, 3000, 'the agent\'s own 10 packets');
    expect(c.drops.rate_limited).toBe(limited0);

    let pongs = 0;
    a.socket!.on('message', (m) => { if (m[0] === FRAME_PONG) pongs++; });
    sendFrom(encodePing(rnd(TOKEN_SIZE), rnd(REG_TOKEN_SIZE)));
    await waitFor(() => c.drops.bad_token === bad0 + FORGED + 1, 3000, 'the forged PING dropped');
    await new Promise((res) => setTimeout(res, 200));
    expect(pongs).toBe(0);
    expect(got).toBe(10);
  });

  it('a key registered again keeps its token (frames in flight still match); another key gets its own', async () => {
    const r = await startRelay();
    relays.push(r);
    const s = dgram.createSocket('udp4');
    await new Promise<void>((res) => s.bind(0, '127.0.0.1', () => res()));
    try {
      const kp = generateKeyPair();
      const first = await tokenOf(r, s, kp);
      expect(first).not.toBe('0'.repeat(2 * REG_TOKEN_SIZE));
      expect(await tokenOf(r, s, kp)).toBe(first);
      const other = await tokenOf(r, s, generateKeyPair()); // evicts kp: one address, one key
      expect(other).not.toBe(first);
      expect(await tokenOf(r, s, kp)).not.toBe(first); // kp's registration was gone: a fresh token
    } finally { s.close(); }
  });
});
