// The relay frame codec: every encoder round-trips through the one decoder, every wrong
// length is a typed drop, and arbitrary bytes never make it throw (fast-check, seeded).
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import {
  AUTH_OVERHEAD, CHALLENGE_SIZE, DEFAULT_MAX_PAYLOAD, FRAME_ACCEPT_ACK, FRAME_ACCEPT_FROM, FRAME_CHALLENGE,
  FRAME_HELLO, FRAME_KEY_CONFLICT, FRAME_LEAVE, FRAME_NOT_REGISTERED, FRAME_PEER_GONE, FRAME_PING, FRAME_PONG, FRAME_RECV,
  FRAME_REGISTER, FRAME_REGISTERED, FRAME_RESTARTING, FRAME_SEND, HELLO_SIZE, IK_MSG1_SIZE, IK_MSG2_SIZE,
  MAX_ACCEPT_KEYS, REGISTER_SIZE, RELAY_FRAME_FIRST, RELAY_FRAME_LAST, acceptAckBody, acceptFromBody, decodeFrame,
  decodeRegisteredPayload, encodeAuthFrame, encodeChallenge, encodeHello, encodeNotRegistered, encodePing, encodePong,
  encodeRegister, encodeRegistered, encodeRegisteredPayload, encodeSend, isRelayFrame, tokenMatches, tokenWords,
  PING_SIZE, PONG_SIZE, RECV_OFFSET_IN_SEND, REGISTERED_SIZE, SEND_HEADER_SIZE, type RelayFrame,
} from '../../src/relay/wire.js';

const SEED = 0x5e1a7;
const bytes = (n: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ minLength: n, maxLength: n });
const eq = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(Buffer.from(b));

function decoded(buf: Uint8Array): RelayFrame {
  const d = decodeFrame(buf);
  if (!d.ok) throw new Error(`expected a frame, got drop ${d.drop}`);
  return d.frame;
}

/** One valid encoding of every frame type, for the length-mutation property. */
const validFrames = fc.oneof(
  bytes(8).map((n) => encodeHello(n)),
  fc.tuple(bytes(24), bytes(8)).map(([c, n]) => encodeChallenge(c, n)),
  fc.tuple(bytes(24), bytes(IK_MSG1_SIZE)).map(([c, m]) => encodeRegister(c, m)),
  bytes(IK_MSG2_SIZE).map((m) => encodeRegistered(m)),
  fc.tuple(bytes(8), bytes(8)).map(([t, r]) => encodePing(t, r)),
  bytes(8).map((t) => encodePong(t)),
  fc.constant(encodeNotRegistered()),
  fc.tuple(fc.maxSafeNat(), bytes(32)).map(([c, k]) => encodeAuthFrame(FRAME_PEER_GONE, c, k)),
  fc.maxSafeNat().map((c) => encodeAuthFrame(FRAME_RESTARTING, c, new Uint8Array(0))),
  fc.maxSafeNat().map((c) => encodeAuthFrame(FRAME_KEY_CONFLICT, c, new Uint8Array(0))),
  fc.maxSafeNat().map((c) => encodeAuthFrame(FRAME_LEAVE, c, new Uint8Array(0))),
  fc.tuple(fc.maxSafeNat(), fc.maxSafeNat()).map(([c, a]) => encodeAuthFrame(FRAME_ACCEPT_ACK, c, acceptAckBody(a))),
  fc.tuple(fc.nat(1000), fc.array(bytes(32), { maxLength: MAX_ACCEPT_KEYS })).map(([c, ks]) => encodeAuthFrame(FRAME_ACCEPT_FROM, c, acceptFromBody(ks))),
);

describe('relay frame codec', () => {
  it('isRelayFrame is exactly the first-byte range 0x20-0x3F', () => {
    for (let b = 0; b < 256; b++) expect(isRelayFrame(new Uint8Array([b]))).toBe(b >= RELAY_FRAME_FIRST && b <= RELAY_FRAME_LAST);
    expect(isRelayFrame(new Uint8Array(0))).toBe(false);
  });

  it('round trip: every encoder decodes to the same fields', () => {
    fc.assert(fc.property(bytes(8), bytes(24), bytes(IK_MSG1_SIZE), bytes(IK_MSG2_SIZE), bytes(32),
      fc.uint8Array({ maxLength: DEFAULT_MAX_PAYLOAD }), fc.maxSafeNat(),
      fc.array(bytes(32), { maxLength: MAX_ACCEPT_KEYS }),
      (nonce, cookie, m1, m2, key, payload, counter, keys) => {
        const h = decoded(encodeHello(nonce));
        expect(h.type === FRAME_HELLO && eq(h.nonce, nonce)).toBe(true);
        const c = decoded(encodeChallenge(cookie, nonce));
        expect(c.type === FRAME_CHALLENGE && eq(c.cookie, cookie) && eq(c.nonce, nonce)).toBe(true);
        const r = decoded(encodeRegister(cookie, m1));
        expect(r.type === FRAME_REGISTER && eq(r.cookie, cookie) && eq(r.ikMessage1, m1)).toBe(true);
        const rd = decoded(encodeRegistered(m2));
        expect(rd.type === FRAME_REGISTERED && eq(rd.ikMessage2, m2)).toBe(true);
        const s = encodeSend(nonce, key, payload);
        const sd = decoded(s);
        expect(sd.type === FRAME_SEND && eq(sd.payload, payload) && eq(sd.regToken, nonce) && eq(s.subarray(9, 41), key)).toBe(true);
        const pi = decoded(encodePing(nonce, cookie.subarray(0, 8)));
        expect(pi.type === FRAME_PING && eq(pi.token, nonce) && eq(pi.regToken, cookie.subarray(0, 8))).toBe(true);
        const po = decoded(encodePong(nonce));
        expect(po.type === FRAME_PONG && eq(po.token, nonce)).toBe(true);
        const pg = decoded(encodeAuthFrame(FRAME_PEER_GONE, counter, key));
        expect(pg.type === FRAME_PEER_GONE && pg.counter === counter && eq(pg.key, key)).toBe(true);
        const af = decoded(encodeAuthFrame(FRAME_ACCEPT_FROM, counter, acceptFromBody(keys)));
        expect(af.type === FRAME_ACCEPT_FROM && af.keys.length === keys.length && af.keys.every((k, i) => eq(k, keys[i]!))).toBe(true);
        const ack = decoded(encodeAuthFrame(FRAME_ACCEPT_ACK, counter, acceptAckBody(counter)));
        expect(ack.type === FRAME_ACCEPT_ACK && ack.counter === counter).toBe(true);
        const lv = decoded(encodeAuthFrame(FRAME_LEAVE, counter, new Uint8Array(0)));
        expect(lv.type === FRAME_LEAVE && lv.counter === counter && lv.body.length === 0 && lv.tag.length === 16).toBe(true);
      }), { seed: SEED, numRuns: 200 });
    const p = { status: 1, reason: 2, keepaliveS: 10, expiryS: 35, token: Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 0xff]) };
    expect(decodeRegisteredPayload(encodeRegisteredPayload(p))).toEqual(p);
    expect(decodeRegisteredPayload(new Uint8Array(4))).toBeNull();
  });

  it('the fixed sizes of the layout table', () => {
    expect(encodeHello().length).toBe(HELLO_SIZE);
    expect(CHALLENGE_SIZE).toBeLessThan(HELLO_SIZE); // no amplification
    expect(encodeRegister(new Uint8Array(24), new Uint8Array(IK_MSG1_SIZE)).length).toBe(REGISTER_SIZE);
    expect(REGISTERED_SIZE).toBe(66);
    expect(REGISTERED_SIZE).toBeLessThan(REGISTER_SIZE); // no amplification
    expect(PING_SIZE).toBe(17);
    expect(PONG_SIZE).toBeLessThan(PING_SIZE);
    expect(SEND_HEADER_SIZE).toBe(41);
    expect(encodeAuthFrame(FRAME_PEER_GONE, 1, new Uint8Array(32)).length).toBe(60);
    expect(encodeAuthFrame(FRAME_RESTARTING, 1, new Uint8Array(0)).length).toBe(AUTH_OVERHEAD);
    expect(encodeAuthFrame(FRAME_LEAVE, 1, new Uint8Array(0)).length).toBe(28);
    expect(encodeAuthFrame(FRAME_ACCEPT_FROM, 1, acceptFromBody(Array(MAX_ACCEPT_KEYS).fill(new Uint8Array(32)))).length).toBeLessThanOrEqual(1100);
    expect(() => acceptFromBody(Array(MAX_ACCEPT_KEYS + 1).fill(new Uint8Array(32)))).toThrow(RangeError);
  });

  it('a valid frame one byte shorter or longer is a typed drop (never a frame of the wrong size)', () => {
    fc.assert(fc.property(validFrames, fc.boolean(), (f, longer) => {
      const g = longer ? Buffer.concat([f, Buffer.from([0])]) : f.subarray(0, f.length - 1);
      const d = decodeFrame(g);
      expect(d.ok).toBe(false);
      if (!d.ok) expect(['malformed', 'oversized', 'unknown_type']).toContain(d.drop);
    }), { seed: SEED, numRuns: 500 });
  });

  it('SEND/RECV: header-only is fine, oversized payload is its own drop; a RECV is the tail of its SEND', () => {
    const tok = new Uint8Array(8);
    expect(decodeFrame(encodeSend(tok, new Uint8Array(32), new Uint8Array(0))).ok).toBe(true);
    const big = encodeSend(tok, new Uint8Array(32), new Uint8Array(DEFAULT_MAX_PAYLOAD + 1));
    expect(decodeFrame(big)).toEqual({ ok: false, drop: 'oversized' });
    const send = Buffer.from(encodeSend(tok, new Uint8Array(32).fill(7), Uint8Array.from([1, 2, 3, 4, 5])));
    // the relay's in-place rewrite: type and source key over the end of the header
    send[RECV_OFFSET_IN_SEND] = FRAME_RECV;
    const recv = decoded(send.subarray(RECV_OFFSET_IN_SEND));
    expect(recv.type === FRAME_RECV && eq(recv.payload, Uint8Array.from([1, 2, 3, 4, 5]))).toBe(true);
    expect(decodeFrame(Buffer.from([FRAME_SEND, 1]))).toEqual({ ok: false, drop: 'malformed' });
    expect(decodeFrame(Buffer.alloc(40, FRAME_SEND))).toEqual({ ok: false, drop: 'malformed' });
  });

  it('registration token: matches only the same 8 bytes at its offset', () => {
    fc.assert(fc.property(bytes(8), bytes(8), fc.nat(40), (t, u, at) => {
      const f = Buffer.alloc(at + 8);
      f.set(t, at);
      expect(tokenMatches(f, at, tokenWords(t))).toBe(true);
      expect(tokenMatches(f, at, tokenWords(u))).toBe(eq(t, u));
    }), { seed: SEED, numRuns: 500 });
    // every single-bit difference fails
    const t = new Uint8Array(8);
    for (let bit = 0; bit < 64; bit++) {
      const f = Buffer.alloc(8); f[bit >> 3] = 1 << (bit & 7);
      expect(tokenMatches(f, 0, tokenWords(t))).toBe(false);
    }
  });

  it('LEAVE is exactly 28 bytes (an empty authenticated body): every other length is malformed', () => {
    const l = encodeAuthFrame(FRAME_LEAVE, 7, new Uint8Array(0));
    expect(decodeFrame(l).ok).toBe(true);
    for (let n = 0; n <= 64; n++) {
      if (n === 28) continue;
      const g = Buffer.alloc(n);
      l.copy(g, 0, 0, Math.min(n, l.length));
      expect(decodeFrame(g)).toEqual({ ok: false, drop: 'malformed' });
    }
    // a LEAVE's counter above 2^53 - 1 is malformed like every authenticated frame's
    l.writeBigUInt64BE(1n << 60n, 4);
    expect(decodeFrame(l)).toEqual({ ok: false, drop: 'malformed' });
    // any 28 bytes of that header: a LEAVE with those counter and tag bytes, or (counter too large) malformed
    fc.assert(fc.property(bytes(24), (rest) => {
      const b = Buffer.concat([Buffer.from([FRAME_LEAVE, 0, 0, 0]), rest]);
      const d = decodeFrame(b);
      if (b.readBigUInt64BE(4) > BigInt(Number.MAX_SAFE_INTEGER)) expect(d).toEqual({ ok: false, drop: 'malformed' });
      else expect(d.ok && d.frame.type === FRAME_LEAVE && eq(d.frame.tag, rest.subarray(8)) && d.frame.counter === Number(b.readBigUInt64BE(4))).toBe(true);
    }), { seed: SEED, numRuns: 500 });
  });

  it('reserved types (0x2B, version 1 REJECTED, and the rest of the range) are unexpected_frame', () => {
    expect(decodeFrame(new Uint8Array([0x2b, 1, 0, 0]))).toEqual({ ok: false, drop: 'unexpected_frame' });
    expect(decodeFrame(new Uint8Array([0x3f]))).toEqual({ ok: false, drop: 'unexpected_frame' });
    expect(decodeFrame(new Uint8Array([0x50]))).toEqual({ ok: false, drop: 'unknown_type' });
    expect(decodeFrame(new Uint8Array(0))).toEqual({ ok: false, drop: 'malformed' });
    // version 1's 4-byte RESTARTING is not an authenticated frame
    expect(decodeFrame(new Uint8Array([FRAME_RESTARTING, 0, 0, 0]))).toEqual({ ok: false, drop: 'malformed' });
  });

  it('an authenticated counter above 2^53 - 1 is malformed (counters are Numbers)', () => {
    const f = encodeAuthFrame(FRAME_RESTARTING, 1, new Uint8Array(0));
    f.writeBigUInt64BE(1n << 60n, 4);
    expect(decodeFrame(f)).toEqual({ ok: false, drop: 'malformed' });
    f.writeBigUInt64BE(BigInt(Number.MAX_SAFE_INTEGER), 4);
    expect(decodeFrame(f).ok).toBe(true);
  });

  it('authenticated frames: nonzero padding bytes or an ACCEPT_FROM count that disagrees with the length are malformed', () => {
    const f = encodeAuthFrame(FRAME_RESTARTING, 5, new Uint8Array(0)); f[2] = 1;
    expect(decodeFrame(f).ok).toBe(false);
    for (const at of [1, 2, 3]) {
      const l = encodeAuthFrame(FRAME_LEAVE, 5, new Uint8Array(0)); l[at] = 1;
      expect(decodeFrame(l)).toEqual({ ok: false, drop: 'malformed' });
    }
    const a = encodeAuthFrame(FRAME_ACCEPT_FROM, 1, acceptFromBody([new Uint8Array(32)])); a[12] = 2;
    expect(decodeFrame(a)).toEqual({ ok: false, drop: 'malformed' });
    const over = encodeAuthFrame(FRAME_ACCEPT_FROM, 1, new Uint8Array(1 + 33 * 32)); over[12] = MAX_ACCEPT_KEYS + 1;
    expect(decodeFrame(over)).toEqual({ ok: false, drop: 'malformed' });
  });

  it('fuzz: arbitrary bytes decode to a typed frame or a typed drop and never throw', () => {
    const drops = new Set(['unknown_type', 'malformed', 'oversized', 'unexpected_frame']);
    fc.assert(fc.property(fc.uint8Array({ maxLength: 1600 }), fc.integer({ min: 0x20, max: 0x3f }), fc.boolean(), (b, t, aim) => {
      if (aim && b.length > 0) b[0] = t;
      const d = decodeFrame(b);
      if (d.ok) expect(d.frame.type).toBe(b[0]);
      else expect(drops.has(d.drop)).toBe(true);
    }), { seed: SEED, numRuns: 5000 });
  });
});
