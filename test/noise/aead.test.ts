// The libsodium ChaCha20-Poly1305 path of CipherState: byte-identical to OpenSSL's for the
// same key and nonce (so the nonce layout, 4 zero bytes ‖ u64 LE counter, is right across
// the 2^32 and 2^53 edges), in place with a detached tag, and failing without throwing.
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { createCipheriv } from 'node:crypto';
import { CipherState, MAX_COUNTER, NoiseError } from '../../src/noise/index.js';

const key = new Uint8Array(32).map((_, i) => i * 7 + 1);
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

function opensslSeal(counter: number, ad: Uint8Array, pt: Uint8Array): string {
  const nonce = Buffer.alloc(12);
  nonce.writeBigUInt64LE(BigInt(counter), 4);
  const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
  if (ad.length) c.setAAD(ad, { plaintextLength: pt.length });
  const body = c.update(pt);
  c.final();
  return hex(Buffer.concat([body, c.getAuthTag()]));
}

const counters = fc.oneof(
  fc.integer({ min: 0, max: 1000 }),
  fc.integer({ min: 2 ** 32 - 3, max: 2 ** 32 + 3 }),
  fc.integer({ min: MAX_COUNTER - 3, max: MAX_COUNTER }),
  fc.integer({ min: 0, max: MAX_COUNTER }),
);

describe('CipherState on libsodium', () => {
  it('matches OpenSSL byte for byte (copying and in-place forms), with and without AD', () => {
    const cs = new CipherState(key);
    fc.assert(fc.property(counters, fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ maxLength: 1500 }), (n, ad, pt) => {
      const expected = opensslSeal(n, ad, pt);
      expect(hex(cs.encryptWithNonce(n, ad, pt))).toBe(expected);
      const buf = new Uint8Array(pt.length + 16);
      buf.set(pt);
      cs.encryptInPlace(n, buf.subarray(0, pt.length), buf.subarray(pt.length), ad);
      expect(hex(buf)).toBe(expected);
      expect(cs.decryptInPlace(n, buf.subarray(0, pt.length), buf.subarray(pt.length), ad)).toBe(true);
      expect(hex(buf.subarray(0, pt.length))).toBe(hex(pt));
    }), { numRuns: 200, seed: 0xae4d });
  });

  it('a forged tag, a wrong counter or a wrong AD fails without throwing, and the window of bad counters is closed', () => {
    const cs = new CipherState(key);
    fc.assert(fc.property(counters, fc.uint8Array({ minLength: 1, maxLength: 200 }), fc.nat(), (n, pt, flip) => {
      const ct = cs.encryptWithNonce(n, new Uint8Array(0), pt);
      const bad = new Uint8Array(ct);
      bad[flip % bad.length]! ^= 1 << (flip % 8);
      expect(cs.decryptWithNonce(n, new Uint8Array(0), bad)).toBeNull();
      expect(cs.decryptWithNonce(n === 0 ? 1 : n - 1, new Uint8Array(0), ct)).toBeNull();
      expect(cs.decryptWithNonce(n, new Uint8Array([1]), ct)).toBeNull();
      expect(hex(cs.decryptWithNonce(n, new Uint8Array(0), ct)!)).toBe(hex(pt));
    }), { numRuns: 200, seed: 0xbad });
    const ct = cs.encryptWithNonce(0, new Uint8Array(0), new Uint8Array(8));
    for (const n of [-1, MAX_COUNTER + 1, 2 ** 64, 0.5, NaN]) expect(cs.decryptWithNonce(n, new Uint8Array(0), ct)).toBeNull();
    expect(() => cs.encryptWithNonce(MAX_COUNTER + 1, new Uint8Array(0), new Uint8Array(1))).toThrow(NoiseError);
    expect(cs.decryptWithNonce(0, new Uint8Array(0), ct.subarray(0, 15))).toBeNull();
  });

  it('decrypting in place leaves the bytes of a failed packet zeroed, never half-decrypted', () => {
    const cs = new CipherState(key);
    const buf = cs.encryptWithNonce(3, new Uint8Array(0), new Uint8Array(100).fill(0xab));
    buf[buf.length - 1]! ^= 1;
    expect(cs.decryptInPlace(3, buf.subarray(0, 100), buf.subarray(100))).toBe(false);
    expect(buf.subarray(0, 100).every((b) => b === 0)).toBe(true);
  });

  it('copying decryption of a Node Buffer leaves the Buffer untouched (Buffer.slice is a view)', () => {
    const cs = new CipherState(key);
    const ct = Buffer.from(cs.encryptWithNonce(9, new Uint8Array(0), new Uint8Array([1, 2, 3, 4])));
    const before = hex(ct);
    expect(Array.from(cs.decryptWithNonce(9, new Uint8Array(0), ct)!)).toEqual([1, 2, 3, 4]);
    expect(hex(ct)).toBe(before);
  });

  it('destroy() zeroes the key buffer; decryption then fails and encryption throws', () => {
    const cs = new CipherState(key);
    const ct = cs.encryptWithNonce(0, new Uint8Array(0), new Uint8Array([5]));
    const buf = cs.keyBufferForTest()!;
    expect(buf.some((b) => b !== 0)).toBe(true);
    expect(key.some((b) => b !== 0)).toBe(true); // the caller's key was copied, not taken
    cs.destroy();
    expect(buf.every((b) => b === 0)).toBe(true);
    expect(cs.decryptWithNonce(0, new Uint8Array(0), ct)).toBeNull();
    expect(() => cs.encryptWithNonce(1, new Uint8Array(0), new Uint8Array(1))).toThrow(NoiseError);
  });
});
