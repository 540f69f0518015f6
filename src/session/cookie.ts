// WireGuard's cookie mechanism (whitepaper §5.4.7) for initiations under load, our labels.
//
// Responder (CookieChecker): a random secret, replaced when older than 2 minutes. The
// cookie of a source is keyed BLAKE2s-128(key = secret, source bytes) — the source is the
// direct datagram's address:port, or a relayed datagram's relay-authenticated sender key
// (the manager's `source` option maps endpoints to bytes). Under load, an initiation
// whose mac2 is not made with its source's cookie gets a cookie reply instead of a
// handshake: the cookie, encrypted with XChaCha20-Poly1305 under
// cookie_key = BLAKE2s-256("cookie--" ‖ responder static public), a random 24-byte nonce,
// and the initiation's mac1 as associated data (so only the sender of that very
// initiation — who knows the responder's public key — can use it). A sender that spoofs its
// source never sees the reply, so it can never produce a valid mac2 for that source.
//
// Initiator (CookieJar, one per peer): remembers the mac1 of its last initiation, accepts
// one cookie reply for it, and puts mac2 = keyed BLAKE2s-128(key = cookie, message bytes
// before mac2) into its initiations while the cookie is fresh.
import sodium from 'sodium-native';
import { AssertionError } from 'node:assert';
import { computeMac, cookieKey, verifyMac } from './mac.js';
import { COOKIE_NONCE_LEN, MAC_LEN, encodeCookieReply, type CookieReply } from './wire.js';

/** The responder replaces its secret after this long (WireGuard's COOKIE_SECRET_MAX_AGE). */
export const COOKIE_SECRET_LIFETIME_MS = 120_000;
/**
 * An initiator uses a cookie this long after receiving it: the secret's lifetime minus a
 * margin for the cookie's trip (WireGuard's COOKIE_SECRET_LATENCY, 5 s), so it stops before
 * the responder would have replaced the secret that made it.
 */
export const COOKIE_USABLE_MS = COOKIE_SECRET_LIFETIME_MS - 5_000;

const SECRET_LEN = 32;
const ENCRYPTED_COOKIE_LEN = MAC_LEN + 16;

type RandomFill = (b: Uint8Array) => void;
const randomFill: RandomFill = (b) => sodium.randombytes_buf(b);

export class CookieChecker {
  private readonly secret = new Uint8Array(SECRET_LEN);
  private secretSetAt = -Infinity;
  private readonly encryptionKey: Uint8Array;

  constructor(ownStaticPublic: Uint8Array, private readonly random: RandomFill = randomFill) {
    this.encryptionKey = cookieKey(ownStaticPublic);
  }

  /**
   * Whether `mac2` over `covered` was made with the cookie of `source` under the current
   * secret (constant time). False when the secret has expired: every cookie then has.
   */
  verifyMac2(source: Uint8Array, covered: Uint8Array, mac2: Uint8Array, now: number): boolean {
    if (now - this.secretSetAt >= COOKIE_SECRET_LIFETIME_MS) return false;
    if (mac2.every((b) => b === 0)) return false; // "no cookie" (public): spare the hashes
    const cookie = computeMac(this.secret, source);
    const ok = verifyMac(cookie, covered, mac2);
    cookie.fill(0);
    return ok;
  }

  /** The cookie reply (type 0x13, 64 bytes) to a message with this sender index and mac1 from `source`. */
  makeReply(receiverIndex: number, mac1: Uint8Array, source: Uint8Array, now: number): Uint8Array {
    if (now - this.secretSetAt >= COOKIE_SECRET_LIFETIME_MS) {
      this.random(this.secret);
      this.secretSetAt = now;
    }
    const cookie = computeMac(this.secret, source);
    const nonce = new Uint8Array(COOKIE_NONCE_LEN);
    this.random(nonce);
    const encryptedCookie = new Uint8Array(ENCRYPTED_COOKIE_LEN);
    sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(encryptedCookie, cookie, mac1, null, nonce, this.encryptionKey);
    cookie.fill(0);
    return encodeCookieReply({ receiverIndex, nonce, encryptedCookie });
  }

  /** Zero the secret (the manager closes). */
  destroy(): void {
    this.secret.fill(0);
    this.secretSetAt = -Infinity;
  }
}

export class CookieJar {
  private readonly cookie = new Uint8Array(MAC_LEN);
  private cookieSetAt = -Infinity;
  /** mac1 of our last initiation to this peer: the only message a cookie reply may answer */
  private readonly lastMac1 = new Uint8Array(MAC_LEN);
  private expectingReply = false;
  private readonly decryptionKey: Uint8Array;

  constructor(peerStaticPublic: Uint8Array) {
    this.decryptionKey = cookieKey(peerStaticPublic);
  }

  hasUsableCookie(now: number): boolean { return now - this.cookieSetAt < COOKIE_USABLE_MS; }

  /** mac2 for an outgoing message: made with the cookie while it is usable, else 16 zero bytes. */
  mac2(covered: Uint8Array, now: number): Uint8Array {
    return this.hasUsableCookie(now) ? computeMac(this.cookie, covered) : new Uint8Array(MAC_LEN);
  }

  /** Call with the mac1 of each initiation sent: a cookie reply must answer the latest. */
  sent(mac1: Uint8Array): void {
    this.lastMac1.set(mac1);
    this.expectingReply = true;
  }

  /**
   * Takes the cookie out of a reply to our latest initiation. False (and nothing changes)
   * when no reply is expected — at most one is accepted per initiation — or it does not
   * authenticate. Never throws on bad input.
   */
  consume(reply: CookieReply, now: number): boolean {
    if (!this.expectingReply || reply.nonce.length !== COOKIE_NONCE_LEN || reply.encryptedCookie.length !== ENCRYPTED_COOKIE_LEN) return false;
    const cookie = new Uint8Array(MAC_LEN);
    const stackTraceLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0; // a forged reply throws inside sodium-native: no stack to capture
    try {
      sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(cookie, null, reply.encryptedCookie, this.lastMac1, reply.nonce, this.decryptionKey);
    } catch (err) {
      if (err instanceof AssertionError) throw err; // a size bug of ours, not bad input
      return false;
    } finally {
      Error.stackTraceLimit = stackTraceLimit;
    }
    this.cookie.set(cookie);
    cookie.fill(0);
    this.cookieSetAt = now;
    this.expectingReply = false;
    return true;
  }

  /** Zero the cookie (the manager closes). */
  destroy(): void {
    this.cookie.fill(0);
    this.cookieSetAt = -Infinity;
    this.expectingReply = false;
  }
}
