// SymmetricState (Noise rev. 34 §5.2): chaining key ck, handshake hash h, and a CipherState.
// ck and h are two fixed 32-byte buffers overwritten in place, and every temporary that
// held a key (HKDF outputs, hash digests of h) is zeroed once copied, so destroy() leaves
// no copy of the handshake's secrets behind in this object's memory.
import { KEY_LEN } from './aead.js';
import { CipherState } from './cipher-state.js';
import { hkdf, type NoiseHash } from './crypto.js';
import { NoiseError } from './errors.js';

const HASHLEN = 32;

/** A saved ck/h/cipher, to roll back a message that fails to authenticate. */
export interface SymmetricSnapshot { ck: Uint8Array; h: Uint8Array; cipher: CipherState }

export class SymmetricState {
  readonly cipher = new CipherState();
  private readonly ck = new Uint8Array(HASHLEN);
  private readonly h = new Uint8Array(HASHLEN);
  private destroyed = false;

  constructor(readonly hashFn: NoiseHash, protocolName: string) {
    const name = new TextEncoder().encode(protocolName);
    // §5.2 InitializeSymmetric: pad a short name with zeros, hash a long one.
    if (name.length <= HASHLEN) this.h.set(name);
    else this.setH(hashFn.hash(name));
    this.ck.set(this.h);
  }

  /** A copy of h (the internal buffer is zeroed by destroy()). */
  handshakeHash(): Uint8Array { return this.h.slice(); }

  mixHash(data: Uint8Array): void {
    this.live();
    this.setH(this.hashFn.hash(this.h, data));
  }

  mixKey(ikm: Uint8Array): void {
    this.live();
    const [ck, tempK] = hkdf(this.hashFn, this.ck, ikm, 2) as [Uint8Array, Uint8Array];
    this.ck.set(ck);
    this.cipher.initializeKey(tempK.subarray(0, KEY_LEN));
    ck.fill(0);
    tempK.fill(0);
  }

  /** For the psk token (§9.2). */
  mixKeyAndHash(ikm: Uint8Array): void {
    this.live();
    const [ck, tempH, tempK] = hkdf(this.hashFn, this.ck, ikm, 3) as [Uint8Array, Uint8Array, Uint8Array];
    this.ck.set(ck);
    this.mixHash(tempH);
    this.cipher.initializeKey(tempK.subarray(0, KEY_LEN));
    ck.fill(0);
    tempH.fill(0);
    tempK.fill(0);
  }

  encryptAndHash(plaintext: Uint8Array): Uint8Array {
    this.live();
    const ct = this.cipher.encryptWithAd(this.h, plaintext);
    this.mixHash(ct);
    return ct;
  }

  /** Throws NoiseError on authentication failure; h is then unchanged. */
  decryptAndHash(ciphertext: Uint8Array): Uint8Array {
    this.live();
    const pt = this.cipher.decryptWithAd(this.h, ciphertext);
    this.mixHash(ciphertext);
    return pt;
  }

  /** Returns [initiator→responder, responder→initiator] cipher states; zeroes ck, its last use. */
  split(): [CipherState, CipherState] {
    const k1 = new Uint8Array(KEY_LEN), k2 = new Uint8Array(KEY_LEN);
    this.splitInto(k1, k2);
    const pair: [CipherState, CipherState] = [new CipherState(k1), new CipherState(k2)];
    k1.fill(0);
    k2.fill(0);
    return pair;
  }

  /**
   * split() as raw keys: writes the initiator→responder key into `i2r` and the other into
   * `r2i` (32 bytes each), for holders that keep many keys and no cipher object per key
   * (the relay's per-registration control keys); zeroes ck and every temporary.
   */
  splitInto(i2r: Uint8Array, r2i: Uint8Array): void {
    this.live();
    if (i2r.length !== KEY_LEN || r2i.length !== KEY_LEN) throw new NoiseError(`split keys are ${KEY_LEN} bytes`);
    const [k1, k2] = hkdf(this.hashFn, this.ck, new Uint8Array(0), 2) as [Uint8Array, Uint8Array];
    i2r.set(k1.subarray(0, KEY_LEN));
    r2i.set(k2.subarray(0, KEY_LEN));
    k1.fill(0);
    k2.fill(0);
    this.ck.fill(0);
    this.cipher.destroy();
  }

  snapshot(): SymmetricSnapshot {
    return { ck: this.ck.slice(), h: this.h.slice(), cipher: this.cipher.clone() };
  }

  restore(s: SymmetricSnapshot): void {
    this.ck.set(s.ck);
    this.h.set(s.h);
    this.cipher.restoreFrom(s.cipher);
  }

  /** Zero a snapshot once it is no longer needed. */
  static wipe(s: SymmetricSnapshot): void {
    s.ck.fill(0);
    s.h.fill(0);
    s.cipher.destroy();
  }

  /** Zero ck, h and the cipher key; every later use throws. */
  destroy(): void {
    this.destroyed = true;
    this.ck.fill(0);
    this.h.fill(0);
    this.cipher.destroy();
  }

  /** Test hook: the buffers that hold secrets (ck, h, and the current cipher key if any). */
  secretBuffersForTest(): Uint8Array[] {
    const key = this.cipher.keyBufferForTest();
    return key ? [this.ck, this.h, key] : [this.ck, this.h];
  }

  private setH(digest: Uint8Array): void {
    this.h.set(digest);
    digest.fill(0);
  }

  private live(): void {
    if (this.destroyed) throw new NoiseError('handshake state destroyed');
  }
}
