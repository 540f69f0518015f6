// HandshakeState (Noise rev. 34 §5.3) for the IK pattern and its psk2 variant:
//   IK:      <- s ;  -> e, es, s, ss ;  <- e, ee, se
//   IKpsk2:  <- s ;  -> e, es, s, ss ;  <- e, ee, se, psk
// Supported names: Noise_IK[psk2]_25519_ChaChaPoly_{BLAKE2s,SHA256}.
//
// Secrets do not outlive their use: each DH result is zeroed once mixed in, the ephemeral
// private key as soon as the last DH that needs it is done (end of the handshake), ck by
// split(), and destroy() zeroes everything else (h, the ephemeral public keys, a pending
// rollback copy). Public keys the caller passed in (static keys, a fixed test ephemeral)
// are the caller's and are left alone.
import { TAG_LEN } from './aead.js';
import { CipherState } from './cipher-state.js';
import { BLAKE2S, DHLEN, SHA256, dh, generateKeyPair, type KeyPair, type NoiseHash } from './crypto.js';
import { NoiseError } from './errors.js';
import { SymmetricState } from './symmetric-state.js';

export interface HandshakeOptions {
  protocolName: string;
  initiator: boolean;
  prologue: Uint8Array;
  staticKey: KeyPair;
  /** required for the IK initiator */
  remoteStaticKey?: Uint8Array;
  /** a fixed ephemeral key: test vectors only */
  ephemeralKey?: KeyPair;
  /** 32-byte pre-shared key for the psk2 variants */
  psk?: Uint8Array;
  /**
   * DH(s, rs) for a remote static key, usually precomputed: it is the same for every
   * handshake with one peer, so a responder that caches it spends one DH (es) instead of
   * two before it can check the initiation's timestamp. Returning undefined refuses that
   * remote static key: the read fails with a NoiseError before the ss DH. The returned
   * buffer stays the caller's (never zeroed here). Default: computed each time.
   */
  staticDh?: (remoteStatic: Uint8Array) => Uint8Array | undefined;
}

const PROTOCOL_RE = /^Noise_IK(psk2)?_25519_ChaChaPoly_(BLAKE2s|SHA256)$/;

export function isSupportedProtocol(name: string): boolean { return PROTOCOL_RE.test(name); }

export class HandshakeState {
  private readonly ss: SymmetricState;
  private readonly initiator: boolean;
  private readonly s: KeyPair;
  private rs: Uint8Array | undefined;
  private e: KeyPair | undefined;
  private re: Uint8Array | undefined;
  private readonly fixedEphemeral: KeyPair | undefined;
  private readonly psk: Uint8Array | undefined;
  private readonly staticDh: ((remoteStatic: Uint8Array) => Uint8Array | undefined) | undefined;
  /** how many handshake messages have been written or read (IK has 2) */
  private messageIndex = 0;
  private destroyed = false;

  constructor(opts: HandshakeOptions) {
    const m = PROTOCOL_RE.exec(opts.protocolName);
    if (!m) throw new NoiseError(`unsupported protocol ${opts.protocolName}`);
    const usesPsk = m[1] === 'psk2';
    const hashFn: NoiseHash = m[2] === 'SHA256' ? SHA256 : BLAKE2S;
    if (usesPsk && (!opts.psk || opts.psk.length !== 32)) throw new NoiseError('psk2 needs a 32-byte psk');
    if (!usesPsk && opts.psk) throw new NoiseError('psk given for a protocol without psk');
    if (opts.staticKey.publicKey.length !== DHLEN || opts.staticKey.privateKey.length !== DHLEN) {
      throw new NoiseError('static key must be 32-byte X25519 keys');
    }
    this.ss = new SymmetricState(hashFn, opts.protocolName);
    this.initiator = opts.initiator;
    this.s = opts.staticKey;
    this.fixedEphemeral = opts.ephemeralKey;
    this.psk = usesPsk ? opts.psk : undefined;
    this.staticDh = opts.staticDh;
    this.ss.mixHash(opts.prologue);
    // pre-message "<- s": the responder's static key
    if (opts.initiator) {
      if (!opts.remoteStaticKey || opts.remoteStaticKey.length !== DHLEN) {
        throw new NoiseError('IK initiator needs the 32-byte remote static key');
      }
      this.rs = opts.remoteStaticKey;
      this.ss.mixHash(this.rs);
    } else {
      this.ss.mixHash(this.s.publicKey);
    }
  }

  get isComplete(): boolean { return this.messageIndex >= 2; }
  /** A copy of h; zeros after destroy(). */
  handshakeHash(): Uint8Array { return this.ss.handshakeHash(); }
  remoteStaticKey(): Uint8Array | undefined { return this.rs; }

  /** MixKey(DH(priv, pub)), zeroing the DH result. */
  private mixDh(privateKey: Uint8Array, publicKey: Uint8Array): void {
    const shared = dh(privateKey, publicKey);
    this.ss.mixKey(shared);
    shared.fill(0);
  }

  /** The ss token: through the caller's (cached) staticDh when given. */
  private mixStaticStatic(rs: Uint8Array): void {
    if (!this.staticDh) { this.mixDh(this.s.privateKey, rs); return; }
    const shared = this.staticDh(rs);
    if (!shared) throw new NoiseError('remote static key refused');
    if (shared.length !== DHLEN) throw new NoiseError('staticDh must return 32 bytes');
    this.ss.mixKey(shared);
  }

  /** The last DH is done: the ephemeral private key has no further use. */
  private dropEphemeralSecret(): void {
    if (this.e && this.e !== this.fixedEphemeral) this.e.privateKey.fill(0);
  }

  /** The "e" token; with a psk, the ephemeral key is also mixed into the key (§9.2). */
  private writeE(): Uint8Array {
    this.e = this.fixedEphemeral ?? generateKeyPair();
    this.ss.mixHash(this.e.publicKey);
    if (this.psk) this.ss.mixKey(this.e.publicKey);
    return this.e.publicKey;
  }

  private readE(re: Uint8Array): void {
    this.re = re;
    this.ss.mixHash(re);
    if (this.psk) this.ss.mixKey(re);
  }

  writeMessage(payload: Uint8Array): Uint8Array {
    this.live();
    if (this.initiator && this.messageIndex === 0) {
      const e = this.writeE();
      this.mixDh(this.e!.privateKey, this.rs!); // es
      const encS = this.ss.encryptAndHash(this.s.publicKey); // s
      this.mixStaticStatic(this.rs!); // ss
      const encPayload = this.ss.encryptAndHash(payload);
      this.messageIndex = 1;
      return concat3(e, encS, encPayload);
    }
    if (!this.initiator && this.messageIndex === 1) {
      const e = this.writeE();
      this.mixDh(this.e!.privateKey, this.re!); // ee
      this.mixDh(this.e!.privateKey, this.rs!); // se
      this.dropEphemeralSecret();
      if (this.psk) this.ss.mixKeyAndHash(this.psk); // psk
      const encPayload = this.ss.encryptAndHash(payload);
      this.messageIndex = 2;
      return concat3(e, encPayload, new Uint8Array(0));
    }
    throw new NoiseError('writeMessage called out of turn');
  }

  /**
   * Throws NoiseError on bad input (any other exception is a bug and propagates as is).
   * The state is rolled back on failure, so a forged message does not spoil the handshake
   * for the genuine one.
   */
  readMessage(message: Uint8Array): Uint8Array {
    this.live();
    const saved = this.ss.snapshot();
    const savedRe = this.re;
    try {
      return this.readMessageInner(message);
    } catch (err) {
      this.ss.restore(saved);
      this.re = savedRe;
      throw err;
    } finally {
      SymmetricState.wipe(saved);
    }
  }

  private readMessageInner(message: Uint8Array): Uint8Array {
    if (!this.initiator && this.messageIndex === 0) {
      if (message.length < DHLEN + DHLEN + TAG_LEN + TAG_LEN) throw new NoiseError('IK message 1 too short');
      this.readE(new Uint8Array(message.subarray(0, DHLEN))); // a copy, also of a Buffer
      this.mixDh(this.s.privateKey, this.re!); // es
      const rs = this.ss.decryptAndHash(message.subarray(DHLEN, DHLEN + DHLEN + TAG_LEN)); // s
      this.mixStaticStatic(rs); // ss
      const payload = this.ss.decryptAndHash(message.subarray(DHLEN + DHLEN + TAG_LEN));
      this.rs = rs;
      this.messageIndex = 1;
      return payload;
    }
    if (this.initiator && this.messageIndex === 1) {
      if (message.length < DHLEN + TAG_LEN) throw new NoiseError('IK message 2 too short');
      this.readE(new Uint8Array(message.subarray(0, DHLEN))); // a copy, also of a Buffer
      this.mixDh(this.e!.privateKey, this.re!); // ee
      this.mixDh(this.s.privateKey, this.re!); // se
      if (this.psk) this.ss.mixKeyAndHash(this.psk); // psk
      const payload = this.ss.decryptAndHash(message.subarray(DHLEN));
      this.dropEphemeralSecret();
      this.messageIndex = 2;
      return payload;
    }
    throw new NoiseError('readMessage called out of turn');
  }

  /** Cipher states from THIS side's point of view; zeroes the chaining key. */
  split(): { send: CipherState; receive: CipherState } {
    this.live();
    if (!this.isComplete) throw new NoiseError('handshake not complete');
    const [i2r, r2i] = this.ss.split();
    return this.initiator ? { send: i2r, receive: r2i } : { send: r2i, receive: i2r };
  }

  /** split() as raw 32-byte keys from THIS side's point of view, written into the caller's buffers. */
  splitInto(send: Uint8Array, receive: Uint8Array): void {
    this.live();
    if (!this.isComplete) throw new NoiseError('handshake not complete');
    if (this.initiator) this.ss.splitInto(send, receive); else this.ss.splitInto(receive, send);
  }

  /**
   * Zero every secret this state still holds (ephemeral keys, ck, h, the cipher key):
   * call it when the handshake completes or fails. Idempotent; later use throws.
   */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    if (this.e && this.e !== this.fixedEphemeral) {
      this.e.privateKey.fill(0);
      this.e.publicKey.fill(0);
    }
    this.re?.fill(0);
    this.ss.destroy();
  }

  /** Test hook: every buffer of this state that holds a secret right now. */
  secretBuffersForTest(): Uint8Array[] {
    const own = this.e && this.e !== this.fixedEphemeral ? [this.e.privateKey, this.e.publicKey] : [];
    return [...own, ...(this.re ? [this.re] : []), ...this.ss.secretBuffersForTest()];
  }

  private live(): void {
    if (this.destroyed) throw new NoiseError('handshake state destroyed');
  }
}

function concat3(a: Uint8Array, b: Uint8Array, c: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length + c.length);
  out.set(a, 0);
  out.set(b, a.length);
  out.set(c, a.length + b.length);
  return out;
}
