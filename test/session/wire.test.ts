// Session message codecs: exact sizes, round trips, and garbage decoded without throwing.
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import {
  COOKIE_REPLY_LEN, INITIATION_LEN, NOISE_MSG1_LEN, NOISE_MSG2_LEN, RESPONSE_LEN, TRANSPORT_HEADER_LEN,
  decodeSessionMessage, encodeCookieReply, encodeInitiation, encodeResponse, transportReceiverIndex, writeTransportHeader,
} from '../../src/session/wire.js';

const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('session wire format', () => {
  it('has the documented sizes', () => {
    expect([INITIATION_LEN, RESPONSE_LEN, COOKIE_REPLY_LEN, TRANSPORT_HEADER_LEN]).toEqual([148, 92, 64, 16]);
  });

  it('initiation and response round-trip', () => {
    fc.assert(fc.property(fc.nat({ max: 0xffffffff }), fc.nat({ max: 0xffffffff }), bytes(NOISE_MSG1_LEN), bytes(NOISE_MSG2_LEN), bytes(16), bytes(16),
      (s, r, n1, n2, mac1, mac2) => {
        const i = decodeSessionMessage(encodeInitiation({ senderIndex: s, noise: n1, mac1, mac2 }));
        expect(i.type).toBe('initiation');
        if (i.type === 'initiation') expect([i.msg.senderIndex, hex(i.msg.noise), hex(i.msg.mac1), hex(i.msg.mac2)]).toEqual([s, hex(n1), hex(mac1), hex(mac2)]);
        const p = decodeSessionMessage(encodeResponse({ senderIndex: s, receiverIndex: r, noise: n2, mac1, mac2 }));
        expect(p.type).toBe('response');
        if (p.type === 'response') expect([p.msg.senderIndex, p.msg.receiverIndex, hex(p.msg.noise)]).toEqual([s, r, hex(n2)]);
      }), { numRuns: 100 });
  });

  it('cookie reply and transport round-trip (counters exact below 2^53)', () => {
    fc.assert(fc.property(fc.nat({ max: 0xffffffff }), fc.oneof(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), fc.integer({ min: 2 ** 32 - 2, max: 2 ** 32 + 2 })),
      bytes(24), bytes(32), fc.uint8Array({ minLength: 16, maxLength: 1300 }),
      (r, counter, nonce, enc, ct) => {
        const c = decodeSessionMessage(encodeCookieReply({ receiverIndex: r, nonce, encryptedCookie: enc }));
        expect(c.type === 'cookie' && c.msg.receiverIndex === r && hex(c.msg.encryptedCookie) === hex(enc)).toBe(true);
        const pkt = new Uint8Array(TRANSPORT_HEADER_LEN + ct.length);
        pkt.set(ct, TRANSPORT_HEADER_LEN);
        writeTransportHeader(pkt, r, counter);
        expect(Buffer.from(pkt.subarray(8, 16)).readBigUInt64LE()).toBe(BigInt(counter));
        const t = decodeSessionMessage(pkt);
        expect(t.type === 'transport' && t.msg.receiverIndex === r && t.msg.counter === counter && hex(t.msg.ciphertext) === hex(ct)).toBe(true);
        expect(transportReceiverIndex(pkt)).toBe(r);
      }), { numRuns: 100, seed: 0x3172e });
  });

  it('a wire counter at or above 2^53 decodes to at least 2^53 (out of range), never to a smaller value', () => {
    fc.assert(fc.property(fc.bigInt({ min: 1n << 53n, max: (1n << 64n) - 1n }), (counter) => {
      const pkt = new Uint8Array(TRANSPORT_HEADER_LEN + 16);
      pkt[0] = 0x14;
      Buffer.from(pkt.buffer).writeBigUInt64LE(counter, 8);
      const t = decodeSessionMessage(pkt);
      expect(t.type === 'transport' && t.msg.counter >= 2 ** 53).toBe(true);
    }), { numRuns: 200, seed: 0x253 });
  });

  it('rejects wrong lengths, nonzero reserved bytes and unknown types by reason, never throwing', () => {
    expect(decodeSessionMessage(new Uint8Array([0x11, 0, 0, 0, 1]))).toEqual({ type: 'invalid', reason: 'initiation_length' });
    expect(decodeSessionMessage(new Uint8Array(20).fill(0).map((_, i) => (i === 0 ? 0x14 : i === 2 ? 1 : 0)))).toEqual({ type: 'invalid', reason: 'reserved_nonzero' });
    expect(decodeSessionMessage(new Uint8Array([0x14, 0, 0, 0]))).toEqual({ type: 'invalid', reason: 'transport_too_short' });
    expect(decodeSessionMessage(new Uint8Array([0x1f, 0, 0, 0]))).toEqual({ type: 'invalid', reason: 'unknown_type' });
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (garbage) => {
      expect(() => decodeSessionMessage(garbage)).not.toThrow();
    }), { numRuns: 500 });
  });
});
