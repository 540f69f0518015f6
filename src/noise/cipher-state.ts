// CipherState (Noise rev. 34 §5.1): a key, set once, and a nonce counter. The counter is a
// Number and stops at 2^53 − 1 (aead.ts MAX_COUNTER), not at Noise's 2^64 − 1: far beyond
// any handshake or session this product runs (sessions rekey every 2 minutes).
import { KEY_LEN, MAX_COUNTER, NONCE_LEN, decryptCopy, decryptDetached, encryptCopy, encryptDetached, isValidCounter } from './aead.js';
import { NoiseError } from './errors.js';

export class CipherState {
  /** our own copy of the key, zeroed when replaced or destroyed */
  private key: Uint8Array | undefined;
  /** reused by every operation: libsodium reads it during the call only */
  private readonly nonceBuf = new Uint8Array(NONCE_LEN);
  private n = 0;

  constructor(key?: Uint8Array) {
    if (key) this.initializeKey(key);
  }

  /** Copies `key` (the caller may zero its own); zeroes the previous key, if any. */
  initializeKey(key: Uint8Array | undefined): void {
    this.key?.fill(0);
    this.key = undefined;
    if (key) {
      if (key.length !== KEY_LEN) throw new NoiseError('ChaCha20-Poly1305 key must be 32 bytes');
      this.key = new Uint8Array(key);
    }
    this.n = 0;
  }

  hasKey(): boolean { return this.key !== undefined; }
  get nonce(): number { return this.n; }

  /** Without a key, plaintext passes through (§5.1). Uses and increments the counter. */
  encryptWithAd(ad: Uint8Array, plaintext: Uint8Array): Uint8Array {
    if (!this.key) return plaintext;
    if (this.n >= MAX_COUNTER) throw new NoiseError('nonce exhausted');
    const ct = this.encryptWithNonce(this.n, ad, plaintext);
    this.n++;
    return ct;
  }

  /** A failed decryption throws and leaves the counter unchanged. */
  decryptWithAd(ad: Uint8Array, ciphertext: Uint8Array): Uint8Array {
    if (!this.key) return ciphertext;
    if (this.n >= MAX_COUNTER) throw new NoiseError('nonce exhausted');
    const pt = this.decryptWithNonce(this.n, ad, ciphertext);
    if (!pt) throw new NoiseError('decryption failed');
    this.n++;
    return pt;
  }

  /** Explicit-counter form, copying: a new buffer holding ciphertext ‖ tag. */
  encryptWithNonce(n: number, ad: Uint8Array, plaintext: Uint8Array): Uint8Array {
    return encryptCopy(this.liveKey(n), this.nonceBuf, n, ad, plaintext);
  }

  /** Copying; null on authentication failure or a counter out of range; never throws on bad data. */
  decryptWithNonce(n: number, ad: Uint8Array, ciphertext: Uint8Array): Uint8Array | null {
    return this.key ? decryptCopy(this.key, this.nonceBuf, n, ad, ciphertext) : null;
  }

  /** In place with a detached tag: the session layer's hot path. Throws on misuse (no key, bad counter). */
  encryptInPlace(n: number, data: Uint8Array, tag: Uint8Array, ad: Uint8Array | null = null): void {
    encryptDetached(this.liveKey(n), this.nonceBuf, n, ad, data, tag);
  }

  /** False on authentication failure, a counter out of range or no key; never throws on bad data. */
  decryptInPlace(n: number, data: Uint8Array, tag: Uint8Array, ad: Uint8Array | null = null): boolean {
    return this.key !== undefined && decryptDetached(this.key, this.nonceBuf, n, ad, data, tag);
  }

  /** An independent copy (its own key buffer), for rolling back a failed handshake read. */
  clone(): CipherState {
    const c = new CipherState(this.key);
    c.n = this.n;
    return c;
  }

  /** Takes over `other`'s key and counter (the rollback), zeroing the key held so far. */
  restoreFrom(other: CipherState): void {
    this.initializeKey(other.key);
    this.n = other.n;
  }

  /** Zero the key: called when a session is dropped or a handshake ends. */
  destroy(): void {
    this.initializeKey(undefined);
  }

  /** The key for an encryption with counter n; throws on misuse (no key, counter out of range). */
  private liveKey(n: number): Uint8Array {
    if (!this.key) throw new NoiseError('cipher state has no key');
    if (!isValidCounter(n)) throw new NoiseError('nonce out of range');
    return this.key;
  }

  /** Test hook: the key buffer (undefined without a key). */
  keyBufferForTest(): Uint8Array | undefined { return this.key; }
}
