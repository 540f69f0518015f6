// Fuzz (fast-check, seeded) of the session packet codec and the Noise message parser, and
// of SessionManager.receive on top of them: round trips hold; garbage is a counted, typed
// drop; nothing throws. The manager has no catch-all, so a parser that threw would fail
// these tests instead of being counted.
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { HandshakeState, NoiseError, PROTOCOL_NAME, generateKeyPair } from '../../src/noise/index.js';
import { PeerKey } from '../../src/common/peer-key.js';
import { SessionManager } from '../../src/session/index.js';
import { computeMac, mac1Key } from '../../src/session/mac.js';
import {
  COOKIE_REPLY_LEN, INITIATION_LEN, MAC_LEN, MSG_COOKIE_REPLY, MSG_INITIATION, MSG_RESPONSE, MSG_TRANSPORT, NOISE_MSG1_LEN,
  NOISE_MSG2_LEN, RESPONSE_LEN, TRANSPORT_HEADER_LEN, decodeSessionMessage, encodeCookieReply, encodeInitiation,
  encodeResponse, writeTransportHeader,
} from '../../src/session/wire.js';

const SEED = 0x5e5510;
const bytes = (n: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ minLength: n, maxLength: n });
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const u32 = fc.nat({ max: 0xffffffff });
const INVALID_REASONS = new Set(['too_short', 'reserved_nonzero', 'initiation_length', 'response_length', 'cookie_length', 'transport_too_short', 'unknown_type']);

/** Garbage that looks like a session message: a plausible type byte, any length, any bytes. */
const sessionLike = fc.tuple(fc.constantFrom(MSG_INITIATION, MSG_RESPONSE, MSG_COOKIE_REPLY, MSG_TRANSPORT, 0x10, 0x1f), fc.boolean(), fc.oneof(
  fc.uint8Array({ maxLength: 40 }),
  fc.constantFrom(INITIATION_LEN, RESPONSE_LEN, COOKIE_REPLY_LEN, TRANSPORT_HEADER_LEN + 16, 1200).chain((n) => bytes(n - 1)),
)).map(([type, zeroReserved, rest]) => {
  const d = new Uint8Array(1 + rest.length);
  d[0] = type;
  d.set(rest, 1);
  if (zeroReserved) d.fill(0, 1, Math.min(4, d.length));
  return d;
});

describe('decodeSessionMessage (fuzz)', () => {
  it('round-trips every message type', () => {
    fc.assert(fc.property(u32, u32, bytes(NOISE_MSG1_LEN), bytes(NOISE_MSG2_LEN), bytes(MAC_LEN), bytes(MAC_LEN), bytes(24), bytes(32),
      fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), fc.uint8Array({ minLength: 16, maxLength: 1500 }),
      (s, r, n1, n2, mac1, mac2, nonce, enc, counter, ct) => {
        expect(decodeSessionMessage(encodeInitiation({ senderIndex: s, noise: n1, mac1, mac2 }))).toEqual({ type: 'initiation', msg: { senderIndex: s, noise: n1, mac1, mac2 } });
        expect(decodeSessionMessage(encodeResponse({ senderIndex: s, receiverIndex: r, noise: n2, mac1, mac2 }))).toEqual({ type: 'response', msg: { senderIndex: s, receiverIndex: r, noise: n2, mac1, mac2 } });
        expect(decodeSessionMessage(encodeCookieReply({ receiverIndex: r, nonce, encryptedCookie: enc }))).toEqual({ type: 'cookie', msg: { receiverIndex: r, nonce, encryptedCookie: enc } });
        const t = new Uint8Array(TRANSPORT_HEADER_LEN + ct.length);
        t.set(ct, TRANSPORT_HEADER_LEN);
        writeTransportHeader(t, r, counter);
        const d = decodeSessionMessage(t);
        expect(d.type === 'transport' && [d.msg.receiverIndex, d.msg.counter, hex(d.msg.ciphertext)]).toEqual([r, counter, hex(ct)]);
      }), { numRuns: 200, seed: SEED });
  });

  it('garbage decodes to a typed result or to invalid with a known reason, never throwing', () => {
    fc.assert(fc.property(fc.oneof(sessionLike, fc.uint8Array({ maxLength: 300 })), (d) => {
      const r = decodeSessionMessage(d);
      if (r.type === 'invalid') expect(INVALID_REASONS.has(r.reason)).toBe(true);
      else expect(['initiation', 'response', 'cookie', 'transport']).toContain(r.type);
    }), { numRuns: 2000, seed: SEED });
  });
});

describe('Noise message parsing (fuzz)', () => {
  const responderKey = generateKeyPair();
  const initiatorKey = generateKeyPair();
  const prologue = new Uint8Array([1]);

  it('garbage of any length fails only with a NoiseError, on both sides, and the genuine messages still complete', () => {
    const initiator = new HandshakeState({ protocolName: PROTOCOL_NAME, initiator: true, prologue, staticKey: initiatorKey, remoteStaticKey: responderKey.publicKey });
    const responder = new HandshakeState({ protocolName: PROTOCOL_NAME, initiator: false, prologue, staticKey: responderKey });
    const m1 = initiator.writeMessage(new Uint8Array(0));
    const garbage = fc.oneof(fc.uint8Array({ maxLength: 200 }), bytes(m1.length), bytes(48));
    const fails = (hs: HandshakeState, g: Uint8Array): void => {
      let thrown: unknown;
      try { hs.readMessage(g); } catch (err) { thrown = err; }
      expect(thrown).toBeInstanceOf(NoiseError);
    };
    fc.assert(fc.property(garbage, (g) => fails(responder, g)), { numRuns: 300, seed: SEED });
    responder.readMessage(m1);
    const m2 = responder.writeMessage(new Uint8Array(0));
    fc.assert(fc.property(garbage, (g) => fails(initiator, g)), { numRuns: 300, seed: SEED + 1 });
    initiator.readMessage(m2);
    expect(initiator.isComplete && responder.isComplete).toBe(true);
  });
});

describe('SessionManager.receive (fuzz)', () => {
  it('garbage of every type is dropped, counted once under a typed reason, and never throws', () => {
    const kb = generateKeyPair();
    const ka = generateKeyPair();
    const b = new SessionManager<string>({
      staticKey: kb, peers: [PeerKey.fromBytes(ka.publicKey)], transmit: () => {}, deliver: () => { throw new Error('garbage delivered'); },
      clock: () => 5_000,
    });
    const macKey = mac1Key(kb.publicKey);
    // half the garbage initiations carry a valid mac1, so the Noise parser behind it is fuzzed too
    const withMac1 = fc.tuple(bytes(INITIATION_LEN - 8 - 2 * MAC_LEN), bytes(MAC_LEN), u32).map(([noise, mac2, s]) => {
      const d = new Uint8Array(INITIATION_LEN);
      d[0] = MSG_INITIATION;
      new DataView(d.buffer).setUint32(4, s, true);
      d.set(noise, 8);
      d.set(computeMac(macKey, d.subarray(0, INITIATION_LEN - 2 * MAC_LEN)), INITIATION_LEN - 2 * MAC_LEN);
      d.set(mac2, INITIATION_LEN - MAC_LEN);
      return d;
    });
    const total = (): number => [...b.drops.values()].reduce((x, y) => x + y, 0);
    fc.assert(fc.property(fc.oneof(sessionLike, withMac1, fc.uint8Array({ maxLength: 300 })), (d) => {
      const before = total();
      const r = b.receive(d, 'fuzzer');
      expect(r.kind).toBe('dropped');
      if (r.kind === 'dropped') expect(r.reason).toMatch(/^[a-z0-9_]+$/);
      expect(total()).toBe(before + 1);
    }), { numRuns: 2000, seed: SEED });
    expect(b.drops.get('handshake_failed') ?? 0).toBeGreaterThan(0); // the Noise parser was reached
  });
});
