// Off-path attacks (issue #12 rows 4, 7, 8, 9): datagrams with forged loopback source
// addresses (raw-udp.ts), or from many real loopback addresses where the answers are
// what is measured. Nothing here needs a key of the session.
import * as dgram from 'node:dgram';
import {
  AUTH_TAG_SIZE, COOKIE_SIZE, FRAME_KEY_CONFLICT, FRAME_RESTARTING, NONCE_SIZE, REJECT_NOT_ALLOWED,
  REG_TOKEN_SIZE, encodeAuthFrame, encodeChallenge, encodeNotRegistered, encodeSend,
} from '../../relay/wire.js';
import { encodeBindingRequest, newTransactionId } from '../../stun/codec.js';
import type { Endpoint, RawUdp } from './raw-udp.js';
import { paced, randomBytes, type Budget } from './pace.js';

/** an attribute type in the comprehension-required range (< 0x8000) that no one defines */
const UNKNOWN_REQUIRED_ATTRIBUTE = 0x7f01;

/** a Binding request (the codec's) with one empty attribute of that type: 24 bytes */
function requestWithUnknownAttribute(): Buffer {
  const plain = encodeBindingRequest(newTransactionId(), { fingerprint: false });
  const req = Buffer.alloc(plain.length + 4);
  req.set(plain, 0);
  req.writeUInt16BE(4, 2); // message length: the one attribute header
  req.writeUInt16BE(UNKNOWN_REQUIRED_ATTRIBUTE, plain.length);
  return req;
}

/** version 1's unauthenticated REJECTED (0x2B, reserved since): | 0x2B | reason | 0 0 | */
const V1_REJECTED = 0x2b;

/** An authenticated control frame whose tag the spoofer cannot compute: a random one. */
function forgedAuthFrame(type: typeof FRAME_RESTARTING | typeof FRAME_KEY_CONFLICT, counter: number): Uint8Array {
  const f = encodeAuthFrame(type, counter, new Uint8Array(0));
  f.set(randomBytes(AUTH_TAG_SIZE), f.length - AUTH_TAG_SIZE);
  return f;
}

/**
 * Row 4: every relay control frame that changes an agent's registration, "from" the
 * relay's own address:port, at the victim agent, every `intervalMs`: version 1's 4-byte
 * RESTARTING and REJECTED, NOT_REGISTERED, a CHALLENGE with a made-up cookie and nonce, and
 * authenticated RESTARTING and KEY_CONFLICT frames with forged tags and rising counters.
 */
export async function spoofRelayControl(raw: RawUdp, o: { relay: Endpoint; victim: Endpoint; intervalMs: number }, budget: Budget): Promise<{ sent: number }> {
  let counter = 1;
  const frames = (): Uint8Array[] => [
    new Uint8Array([FRAME_RESTARTING, 0, 0, 0]), new Uint8Array([V1_REJECTED, REJECT_NOT_ALLOWED, 0, 0]), encodeNotRegistered(),
    encodeChallenge(randomBytes(COOKIE_SIZE), randomBytes(NONCE_SIZE)),
    forgedAuthFrame(FRAME_RESTARTING, counter++), forgedAuthFrame(FRAME_KEY_CONFLICT, counter++),
  ];
  const perRound = frames().length;
  const sent = await paced(budget, (perRound * 1000) / o.intervalMs, async () => {
    for (const f of frames()) await raw.send(o.relay, o.victim, f);
    return perRound;
  });
  return { sent };
}

/** a random source in 127.0.0.0/8 outside 127.0.0.0/16 (where the test's own sockets live) */
function randomLoopbackSource(): Endpoint {
  const b = randomBytes(5);
  return { address: `127.${1 + (b[0]! % 254)}.${b[1]!}.${1 + (b[2]! % 254)}`, port: 1024 + (((b[3]! << 8) | b[4]!) % 64000) };
}

/** Row 7: one captured handshake initiation, replayed at the victim from random sources. */
export async function replayInitiation(raw: RawUdp, o: { initiation: Uint8Array; victim: Endpoint; pps: number }, budget: Budget): Promise<{ sent: number }> {
  const sent = await paced(budget, o.pps, async () => {
    for (let i = 0; i < 16; i++) await raw.send(randomLoopbackSource(), o.victim, o.initiation);
    return 16;
  });
  return { sent };
}

/**
 * Row 8: SEND frames from a registered agent's exact address:port (forged), so the relay
 * takes them for that agent's packets: to `destKey`, `payloadBytes` of garbage each. The
 * agent's registration token travels only inside its own frames: the spoofer, off the
 * path, puts a guess there (a random one).
 */
export async function spoofSend(raw: RawUdp, o: { asAgent: Endpoint; relay: Endpoint; destKey: Uint8Array; payloadBytes: number; pps: number }, budget: Budget): Promise<{ sent: number }> {
  const frame = encodeSend(randomBytes(REG_TOKEN_SIZE), o.destKey, randomBytes(o.payloadBytes));
  const perBurst = 32;
  const sent = await paced(budget, o.pps, async () => { await raw.send(o.asAgent, o.relay, frame, perBurst); return perBurst; });
  return { sent };
}

/**
 * Row 9: 24-byte Binding requests carrying an unknown comprehension-required attribute,
 * from `sources` loopback addresses; counts the bytes that come back (the amplification).
 */
export async function stunAmplify(o: { relay: Endpoint; sources: number; pps: number }, budget: Budget): Promise<{ sent: number; bytesOut: number; bytesIn: number; answers: number; largestAnswer: number }> {
  const socks = await Promise.all(Array.from({ length: o.sources }, (_, i) => bindUdp(`127.0.2.${1 + (i % 250)}`)));
  const r = { sent: 0, bytesOut: 0, bytesIn: 0, answers: 0, largestAnswer: 0 };
  for (const s of socks) s.on('message', (m) => { r.bytesIn += m.length; r.answers++; r.largestAnswer = Math.max(r.largestAnswer, m.length); });
  const req = requestWithUnknownAttribute();
  r.sent = await paced(budget, o.pps, () => {
    for (const s of socks) {
      req.set(newTransactionId(), 8);
      s.send(req, o.relay.port, o.relay.address);
    }
    r.bytesOut += req.length * socks.length;
    return socks.length;
  });
  await new Promise((res) => setTimeout(res, 200)); // late answers
  for (const s of socks) s.close();
  return r;
}

export async function bindUdp(host: string): Promise<dgram.Socket> {
  const s = dgram.createSocket({ type: 'udp4', sendBufferSize: 1 << 20 });
  await new Promise<void>((res, rej) => { s.once('error', rej); s.bind(0, host, () => { s.off('error', rej); res(); }); });
  return s;
}
