// HandshakeState (Noise rev. 34 §5.3) for the IK pattern and its psk2 variant:
//   IK:      <- s ;  -> e, es, s, ss ;  <- e, ee, se
//   IKpsk2:  <- s ;  -> e, es, s, ss ;  <- e, ee, se, psk
// Supported names: Noise_IK[psk2]_25519_ChaChaPoly_{BLAKE2s,SHA256}.
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
  /** how many handshake messages have been written or read (IK has 2) */
  private messageIndex = 0;

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
  handshakeHash(): Uint8Array { return this.ss.handshakeHash(); }
  remoteStaticKey(): Uint8Array | undefined { return this.rs; }

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
    if (this.initiator && this.messageIndex === 0) {
      const e = this.writeE();
      this.ss.mixKey(dh(this.e!.privateKey, this.rs!)); // es
      const encS = this.ss.encryptAndHash(this.s.publicKey); // s
      this.ss.mixKey(dh(this.s.privateKey, this.rs!)); // ss
      const encPayload = this.ss.encryptAndHash(payload);
      this.messageIndex = 1;
      return concat3(e, encS, encPayload);
    }
    if (!this.initiator && this.messageIndex === 1) {
      const e = this.writeE();
      this.ss.mixKey(dh(this.e!.privateKey, this.re!)); // ee
      this.ss.mixKey(dh(this.e!.privateKey, this.rs!)); // se
      if (this.psk) this.ss.mixKeyAndHash(this.psk); // psk
      const encPayload = this.ss.encryptAndHash(payload);
      this.messageIndex = 2;
      return concat3(e, encPayload, new Uint8Array(0));
    }
    throw new NoiseError('writeMessage called out of turn');
  }

  /**
   * Throws NoiseError on bad input. The state is rolled back on failure, so a forged
   * message does not spoil the handshake for the genuine one.
   */
  readMessage(message: Uint8Array): Uint8Array {
    const saved = this.ss.snapshot();
    const savedRe = this.re;
    try {
      return this.readMessageInner(message);
    } catch (err) {
      this.ss.restore(saved);
      this.re = savedRe;
      throw err instanceof NoiseError ? err : new NoiseError(`bad handshake message: ${String(err)}`);
    }
  }

  private readMessageInner(message: Uint8Array): Uint8Array {
    const tag = 16;
    if (!this.initiator && this.messageIndex === 0) {
      if (message.length < DHLEN + DHLEN + tag + tag) throw new NoiseError('IK message 1 too short');
      this.readE(message.slice(0, DHLEN));
      this.ss.mixKey(dh(this.s.privateKey, this.re!)); // es
      const rs = this.ss.decryptAndHash(message.subarray(DHLEN, DHLEN + DHLEN + tag)); // s
      this.ss.mixKey(dh(this.s.privateKey, rs)); // ss
      const payload = this.ss.decryptAndHash(message.subarray(DHLEN + DHLEN + tag));
      this.rs = new Uint8Array(rs);
      this.messageIndex = 1;
      return payload;
    }
    if (this.initiator && this.messageIndex === 1) {
      if (message.length < DHLEN + tag) throw new NoiseError('IK message 2 too short');
      this.readE(message.slice(0, DHLEN));
      this.ss.mixKey(dh(this.e!.privateKey, this.re!)); // ee
      this.ss.mixKey(dh(this.s.privateKey, this.re!)); // se
      if (this.psk) this.ss.mixKeyAndHash(this.psk); // psk
      const payload = this.ss.decryptAndHash(message.subarray(DHLEN));
      this.messageIndex = 2;
      return payload;
    }
    throw new NoiseError('readMessage called out of turn');
  }

  /** Cipher states from THIS side's point of view. */
  split(): { send: CipherState; receive: CipherState } {
    if (!this.isComplete) throw new NoiseError('handshake not complete');
    const [i2r, r2i] = this.ss.split();
    return this.initiator ? { send: i2r, receive: r2i } : { send: r2i, receive: i2r };
  }

  /** Zero the ephemeral secret and the chaining key once the handshake is no longer needed. */
  destroy(): void {
    if (this.e && this.e !== this.fixedEphemeral) this.e.privateKey.fill(0);
    this.ss.destroy();
  }
}

function concat3(a: Uint8Array, b: Uint8Array, c: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length + c.length);
  out.set(a, 0);
  out.set(b, a.length);
  out.set(c, a.length + b.length);
  return out;
}
