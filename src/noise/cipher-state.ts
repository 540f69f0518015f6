// CipherState (Noise rev. 34 §5.1): a key and a 64-bit nonce counter.
import { aeadDecrypt, aeadEncrypt } from './crypto.js';
import { NoiseError } from './errors.js';

/** 2^64-1 is reserved (§5.1); we stop one short of it. */
const MAX_NONCE = (1n << 64n) - 1n;

export class CipherState {
  private key: Uint8Array | undefined;
  private n = 0n;

  constructor(key?: Uint8Array) {
    if (key) this.initializeKey(key);
  }

  initializeKey(key: Uint8Array | undefined): void {
    this.key = key ? new Uint8Array(key) : undefined;
    this.n = 0n;
  }

  hasKey(): boolean { return this.key !== undefined; }
  get nonce(): bigint { return this.n; }

  /** Without a key, plaintext passes through (§5.1). Uses and increments the counter. */
  encryptWithAd(ad: Uint8Array, plaintext: Uint8Array): Uint8Array {
    if (!this.key) return plaintext;
    if (this.n >= MAX_NONCE) throw new NoiseError('nonce exhausted');
    const ct = aeadEncrypt(this.key, this.n, ad, plaintext);
    this.n++;
    return ct;
  }

  /** A failed decryption throws and leaves the counter unchanged. */
  decryptWithAd(ad: Uint8Array, ciphertext: Uint8Array): Uint8Array {
    if (!this.key) return ciphertext;
    if (this.n >= MAX_NONCE) throw new NoiseError('nonce exhausted');
    const pt = aeadDecrypt(this.key, this.n, ad, ciphertext);
    if (!pt) throw new NoiseError('decryption failed');
    this.n++;
    return pt;
  }

  /** Explicit-counter form for datagrams, where packets arrive out of order. */
  encryptWithNonce(n: bigint, ad: Uint8Array, plaintext: Uint8Array): Uint8Array {
    if (!this.key) throw new NoiseError('cipher state has no key');
    if (n < 0n || n >= MAX_NONCE) throw new NoiseError('nonce out of range');
    return aeadEncrypt(this.key, n, ad, plaintext);
  }

  /** Null on authentication failure; never throws on bad data. */
  decryptWithNonce(n: bigint, ad: Uint8Array, ciphertext: Uint8Array): Uint8Array | null {
    if (!this.key || n < 0n || n >= MAX_NONCE) return null;
    return aeadDecrypt(this.key, n, ad, ciphertext);
  }

  /** Zero the key: called when a session is dropped. */
  destroy(): void {
    this.key?.fill(0);
    this.key = undefined;
  }
}
