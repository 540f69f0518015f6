// The cookie mechanism on a fake clock: a reply is usable only by the sender of the
// initiation it answers (mac1 as AD), once; mac2 binds the source; secrets and cookies
// expire; garbage never throws.
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { generateKeyPair } from '../../src/noise/index.js';
import { COOKIE_SECRET_LIFETIME_MS, COOKIE_USABLE_MS, CookieChecker, CookieJar } from '../../src/session/cookie.js';
import { COOKIE_REPLY_LEN, decodeSessionMessage, type CookieReply } from '../../src/session/wire.js';

const responder = generateKeyPair();
const src = (s: string): Uint8Array => new TextEncoder().encode(s);
const mac1 = (n: number): Uint8Array => new Uint8Array(16).fill(n);
const covered = new Uint8Array(132).map((_, i) => i);

function reply(packet: Uint8Array): CookieReply {
  const d = decodeSessionMessage(packet);
  if (d.type !== 'cookie') throw new Error(`not a cookie reply: ${d.type}`);
  return d.msg;
}

describe('cookie replies and mac2', () => {
  it('a reply to our initiation gives a cookie whose mac2 the responder accepts for that source only', () => {
    const checker = new CookieChecker(responder.publicKey);
    const jar = new CookieJar(responder.publicKey);
    const now = 5_000;
    expect(Array.from(jar.mac2(covered, now))).toEqual(new Array(16).fill(0)); // no cookie yet
    jar.sent(mac1(1));
    const packet = checker.makeReply(0xabcdef01, mac1(1), src('10.0.0.1:4000'), now);
    expect(packet.length).toBe(COOKIE_REPLY_LEN);
    const r = reply(packet);
    expect(r.receiverIndex).toBe(0xabcdef01);
    expect(jar.consume(r, now)).toBe(true);
    const mac2 = jar.mac2(covered, now + 10);
    expect(checker.verifyMac2(src('10.0.0.1:4000'), covered, mac2, now + 10)).toBe(true);
    expect(checker.verifyMac2(src('10.0.0.1:4001'), covered, mac2, now + 10)).toBe(false);
    const otherBytes = new Uint8Array(covered);
    otherBytes[0]! ^= 1;
    expect(checker.verifyMac2(src('10.0.0.1:4000'), otherBytes, mac2, now + 10)).toBe(false);
  });

  it('is refused when it answers another initiation, when one was already taken, or when forged', () => {
    const checker = new CookieChecker(responder.publicKey);
    const jar = new CookieJar(responder.publicKey);
    const r1 = reply(checker.makeReply(1, mac1(1), src('a'), 0));
    expect(jar.consume(r1, 0)).toBe(false); // nothing sent yet
    jar.sent(mac1(2));
    expect(jar.consume(r1, 0)).toBe(false); // answers mac1(1), we sent mac1(2)
    const r2 = reply(checker.makeReply(1, mac1(2), src('a'), 0));
    const forged = { ...r2, encryptedCookie: new Uint8Array(r2.encryptedCookie) };
    forged.encryptedCookie[3]! ^= 1;
    expect(jar.consume(forged, 0)).toBe(false);
    expect(jar.consume(r2, 0)).toBe(true); // the forgery did not use up the expectation
    expect(jar.consume(r2, 0)).toBe(false); // one reply per initiation
    const stranger = new CookieChecker(generateKeyPair().publicKey);
    jar.sent(mac1(3));
    expect(jar.consume(reply(stranger.makeReply(1, mac1(3), src('a'), 0)), 0)).toBe(false);
  });

  it('expires: the responder replaces its secret after its lifetime, the initiator stops using a cookie before that', () => {
    const checker = new CookieChecker(responder.publicKey);
    const jar = new CookieJar(responder.publicKey);
    jar.sent(mac1(1));
    expect(jar.consume(reply(checker.makeReply(1, mac1(1), src('s'), 0)), 0)).toBe(true);
    expect(jar.hasUsableCookie(COOKIE_USABLE_MS - 1)).toBe(true);
    expect(checker.verifyMac2(src('s'), covered, jar.mac2(covered, COOKIE_USABLE_MS - 1), COOKIE_USABLE_MS - 1)).toBe(true);
    expect(jar.hasUsableCookie(COOKIE_USABLE_MS)).toBe(false);
    expect(Array.from(jar.mac2(covered, COOKIE_USABLE_MS))).toEqual(new Array(16).fill(0));
    // a mac2 made with the old cookie fails once the secret is older than its lifetime ...
    const oldMac2 = jar.mac2(covered, 1_000);
    expect(checker.verifyMac2(src('s'), covered, oldMac2, COOKIE_SECRET_LIFETIME_MS)).toBe(false);
    // ... and after the next reply replaced the secret
    checker.makeReply(1, mac1(9), src('s'), COOKIE_SECRET_LIFETIME_MS);
    expect(checker.verifyMac2(src('s'), covered, oldMac2, COOKIE_SECRET_LIFETIME_MS + 1)).toBe(false);
  });

  it('destroy() forgets the secret and the cookie', () => {
    const checker = new CookieChecker(responder.publicKey);
    const jar = new CookieJar(responder.publicKey);
    jar.sent(mac1(1));
    jar.consume(reply(checker.makeReply(1, mac1(1), src('s'), 0)), 0);
    const mac2 = jar.mac2(covered, 1);
    checker.destroy();
    jar.destroy();
    expect(checker.verifyMac2(src('s'), covered, mac2, 1)).toBe(false);
    expect(jar.hasUsableCookie(1)).toBe(false);
  });

  it('garbage replies are refused without throwing (fuzz)', () => {
    const jar = new CookieJar(responder.publicKey);
    jar.sent(mac1(1));
    fc.assert(fc.property(fc.uint8Array({ minLength: 0, maxLength: 40 }), fc.uint8Array({ minLength: 0, maxLength: 40 }), fc.nat(), (nonce, encryptedCookie, receiverIndex) => {
      expect(jar.consume({ receiverIndex, nonce, encryptedCookie }, 0)).toBe(false);
    }), { numRuns: 300, seed: 0xc00c1e });
    fc.assert(fc.property(fc.uint8Array({ minLength: 24, maxLength: 24 }), fc.uint8Array({ minLength: 32, maxLength: 32 }), (nonce, encryptedCookie) => {
      expect(jar.consume({ receiverIndex: 0, nonce, encryptedCookie }, 0)).toBe(false);
    }), { numRuns: 300, seed: 0xc00c1f });
  });
});
