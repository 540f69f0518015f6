// SymmetricState (Noise rev. 34 §5.2): chaining key ck, handshake hash h, and a CipherState.
import { CipherState } from './cipher-state.js';
import { concatBytes, hkdf, type NoiseHash } from './crypto.js';

export class SymmetricState {
  readonly cipher = new CipherState();
  private ck: Uint8Array;
  private h: Uint8Array;

  constructor(readonly hashFn: NoiseHash, protocolName: string) {
    const name = new TextEncoder().encode(protocolName);
    // §5.2 InitializeSymmetric: pad a short name with zeros, hash a long one.
    this.h = name.length <= hashFn.hashLen
      ? concatBytes(name, new Uint8Array(hashFn.hashLen - name.length))
      : hashFn.hash(name);
    this.ck = this.h;
  }

  handshakeHash(): Uint8Array { return this.h; }

  mixHash(data: Uint8Array): void { this.h = this.hashFn.hash(concatBytes(this.h, data)); }

  mixKey(ikm: Uint8Array): void {
    const [ck, tempK] = hkdf(this.hashFn, this.ck, ikm, 2) as [Uint8Array, Uint8Array];
    this.ck = ck;
    this.cipher.initializeKey(tempK.subarray(0, 32));
  }

  /** For the psk token (§9.2). */
  mixKeyAndHash(ikm: Uint8Array): void {
    const [ck, tempH, tempK] = hkdf(this.hashFn, this.ck, ikm, 3) as [Uint8Array, Uint8Array, Uint8Array];
    this.ck = ck;
    this.mixHash(tempH);
    this.cipher.initializeKey(tempK.subarray(0, 32));
  }

  encryptAndHash(plaintext: Uint8Array): Uint8Array {
    const ct = this.cipher.encryptWithAd(this.h, plaintext);
    this.mixHash(ct);
    return ct;
  }

  /** Throws NoiseError on authentication failure; h is then unchanged. */
  decryptAndHash(ciphertext: Uint8Array): Uint8Array {
    const pt = this.cipher.decryptWithAd(this.h, ciphertext);
    this.mixHash(ciphertext);
    return pt;
  }

  /** Returns [initiator→responder, responder→initiator] cipher states. */
  split(): [CipherState, CipherState] {
    const [k1, k2] = hkdf(this.hashFn, this.ck, new Uint8Array(0), 2) as [Uint8Array, Uint8Array];
    return [new CipherState(k1.subarray(0, 32)), new CipherState(k2.subarray(0, 32))];
  }

  /** A copy, so a message that fails to authenticate can be rolled back. */
  snapshot(): { ck: Uint8Array; h: Uint8Array; cipher: CipherState } {
    const cipher = Object.assign(Object.create(CipherState.prototype) as CipherState, this.cipher);
    return { ck: this.ck, h: this.h, cipher };
  }

  restore(s: { ck: Uint8Array; h: Uint8Array; cipher: CipherState }): void {
    this.ck = s.ck;
    this.h = s.h;
    Object.assign(this.cipher, s.cipher);
  }

  destroy(): void {
    this.ck.fill(0);
    this.cipher.destroy();
  }
}
