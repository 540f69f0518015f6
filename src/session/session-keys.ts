// The transport keys of one completed handshake, as WireGuard calls a "keypair": a sending
// and a receiving ChaCha20-Poly1305 key (set once, libsodium), our explicit send counter,
// the replay window for the peer's counters, and the two 32-bit indices that name it on
// the wire.
//
// The hot path works in place on the caller's memory:
//   sealInPlace(plaintext)  plaintext is a view with SESSION_HEADROOM bytes free before it
//                           and SESSION_TAILROOM bytes free after it in the same
//                           ArrayBuffer; the header is written into the headroom, the
//                           plaintext is encrypted where it lies, the tag goes into the
//                           tailroom, and the whole transport message is returned as a view.
//                           Those bytes must be the caller's to overwrite (never a slice of
//                           Node's shared Buffer pool: only the ArrayBuffer's bounds are checked).
//   openInPlace(message)    decrypts the ciphertext inside the datagram's own memory and
//                           returns the plaintext as a view of it.
// Neither creates a cipher object, an output buffer, a BigInt or a DataView: the only
// allocations are the views (two per packet each way). seal() is the copying form: one
// copy of the plaintext into a new message buffer.
import { CipherState, MAX_COUNTER, NoiseError } from '../noise/index.js';
import { ReplayWindow, type ReplayVerdict } from './replay-window.js';
import { AEAD_TAG_LEN, TRANSPORT_HEADER_LEN, TRANSPORT_OVERHEAD_LEN, readTransportCounter, writeTransportHeader } from './wire.js';

/** Bytes the session layer writes before a plaintext: the transport header. */
export const SESSION_HEADROOM = TRANSPORT_HEADER_LEN;
/** Bytes the session layer writes after a plaintext: the Poly1305 tag. */
export const SESSION_TAILROOM = AEAD_TAG_LEN;

/** Why openInPlace refused a message (the manager's drop-counter labels). */
export type OpenFailure = 'decrypt_failed' | Exclude<ReplayVerdict, 'ok'>;


export class SessionKeys {
  private sendCounter = 0;
  private readonly replay = new ReplayWindow();
  private destroyed = false;

  constructor(
    private readonly sendKey: CipherState,
    private readonly receiveKey: CipherState,
    /** the index WE chose: peers put it in the packets they send us */
    readonly localIndex: number,
    /** the index the PEER chose: we put it in the packets we send */
    readonly remoteIndex: number,
    /** whether we sent the initiation of this handshake */
    readonly initiator: boolean,
    /** monotonic ms when the handshake completed on this side */
    readonly createdAt: number,
  ) {}

  get messagesSent(): number { return this.sendCounter; }
  get isDestroyed(): boolean { return this.destroyed; }

  /**
   * Seals `plaintext` where it lies (see the buffer contract above) and returns the whole
   * transport message (type 0x14) as a view of the same memory. Throws a RangeError when
   * the view lacks the headroom or tailroom (a caller bug), a NoiseError once the send
   * counter is exhausted (the manager rekeys long before, constants.ts).
   */
  sealInPlace(plaintext: Uint8Array): Uint8Array {
    const start = plaintext.byteOffset - SESSION_HEADROOM;
    const end = plaintext.byteOffset + plaintext.length + SESSION_TAILROOM;
    if (start < 0 || end > plaintext.buffer.byteLength) {
      throw new RangeError(`sealInPlace needs ${SESSION_HEADROOM} bytes of headroom and ${SESSION_TAILROOM} of tailroom around the plaintext`);
    }
    if (this.sendCounter > MAX_COUNTER) throw new NoiseError('send counter exhausted');
    const counter = this.sendCounter++;
    const message = new Uint8Array(plaintext.buffer, start, end - start);
    writeTransportHeader(message, this.remoteIndex, counter);
    this.sendKey.encryptInPlace(counter, plaintext, message.subarray(message.length - SESSION_TAILROOM));
    return message;
  }

  /**
   * Opens a whole transport message (header included, as received) in place: on success
   * the plaintext is a view of `message`'s ciphertext bytes, now decrypted. Replayed and
   * too-old counters are refused before any decryption (check() changes nothing), and the
   * window only moves after the AEAD verified, so a forged packet can never move it.
   * Never throws on bad input; after 'decrypt_failed' the ciphertext bytes are zeroed.
   */
  openInPlace(message: Uint8Array): Uint8Array | OpenFailure {
    if (message.length < TRANSPORT_OVERHEAD_LEN) return 'decrypt_failed';
    const counter = readTransportCounter(message);
    const verdict = this.replay.check(counter);
    if (verdict !== 'ok') return verdict;
    const tagAt = message.length - SESSION_TAILROOM;
    const body = message.subarray(SESSION_HEADROOM, tagAt);
    if (!this.receiveKey.decryptInPlace(counter, body, message.subarray(tagAt))) return 'decrypt_failed';
    this.replay.accept(counter);
    return body;
  }

  /** Copying form of sealInPlace: a new buffer holding the transport message. */
  seal(plaintext: Uint8Array): Uint8Array {
    const out = new Uint8Array(plaintext.length + TRANSPORT_OVERHEAD_LEN);
    out.set(plaintext, SESSION_HEADROOM);
    return this.sealInPlace(out.subarray(SESSION_HEADROOM, SESSION_HEADROOM + plaintext.length));
  }

  /** Zero both keys; the session can neither send nor receive afterwards. */
  destroy(): void {
    this.destroyed = true;
    this.sendKey.destroy();
    this.receiveKey.destroy();
  }

  /** Test hook: pretend this many messages were sent (rekey-after-messages tests). */
  setSendCounterForTest(n: number): void { this.sendCounter = n; }
}

