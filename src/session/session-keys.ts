// The transport keys of one completed handshake, as WireGuard calls a "keypair": a sending
// and a receiving ChaCha20-Poly1305 key, our explicit send counter, the replay window for
// the peer's counters, and the two 32-bit indices that name it on the wire.
import { CipherState } from '../noise/index.js';
import { ReplayWindow, type ReplayVerdict } from './replay-window.js';
import { AEAD_TAG_LEN, TRANSPORT_HEADER_LEN, encodeTransportHeader } from './wire.js';

const EMPTY = new Uint8Array(0);

export class SessionKeys {
  private sendCounter = 0n;
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

  get messagesSent(): bigint { return this.sendCounter; }
  get isDestroyed(): boolean { return this.destroyed; }

  /** A complete transport message (type 0x14) carrying `plaintext`. */
  seal(plaintext: Uint8Array): Uint8Array {
    const counter = this.sendCounter++;
    const ct = this.sendKey.encryptWithNonce(counter, EMPTY, plaintext);
    const out = new Uint8Array(TRANSPORT_HEADER_LEN + ct.length);
    out.set(ct, TRANSPORT_HEADER_LEN);
    encodeTransportHeader(out, this.remoteIndex, counter);
    return out;
  }

  /**
   * Authenticates first and only then consults the replay window, so a forged packet can
   * never move it. Null when the AEAD fails; the verdict tells replays apart.
   */
  open(counter: bigint, ciphertext: Uint8Array): { plaintext: Uint8Array; verdict: ReplayVerdict } | null {
    if (ciphertext.length < AEAD_TAG_LEN) return null;
    const plaintext = this.receiveKey.decryptWithNonce(counter, EMPTY, ciphertext);
    if (!plaintext) return null;
    return { plaintext, verdict: this.replay.accept(counter) };
  }

  /** Zero both keys; the session can neither send nor receive afterwards. */
  destroy(): void {
    this.destroyed = true;
    this.sendKey.destroy();
    this.receiveKey.destroy();
  }

  /** Test hook: pretend this many messages were sent (rekey-after-messages tests). */
  setSendCounterForTest(n: bigint): void { this.sendCounter = n; }
}
