// Authenticated relay control frames (docs/protocol/relay.md, "Authenticated control
// frames"): both ends of a registration hold the two keys of the IK handshake's split();
// every frame that changes an agent's state carries a counter and a ChaCha20-Poly1305 tag
// over the whole frame (empty plaintext, the frame as associated data).
//
//   | type | 0 0 0 | counter u64 BE | body | tag (16) |
import { CipherState, type HandshakeState } from '../noise/index.js';
import { AUTH_TAG_SIZE, encodeAuthFrame, type AuthFrame, type AuthFrameType } from './wire.js';

const EMPTY = new Uint8Array(0);

/** One direction of one registration: a key and the counter of the last frame. */
export class ControlChannel {
  /** sending: the last counter used; receiving: the highest counter accepted */
  private counter = 0;
  constructor(private readonly cipher: CipherState) {}

  /** An authenticated frame of `type` carrying `body`. */
  seal(type: AuthFrameType, body: Uint8Array = EMPTY): Buffer {
    this.counter++;
    const f = encodeAuthFrame(type, this.counter, body);
    const tagAt = f.length - AUTH_TAG_SIZE;
    f.set(this.cipher.encryptWithNonce(this.counter, f.subarray(0, tagAt), EMPTY), tagAt);
    return f;
  }

  /**
   * Verify a decoded authenticated frame: its counter must be newer than every one accepted
   * before (replays and reordered stale frames fail) and its tag must verify (constant
   * time, inside the AEAD). Only a frame that passes advances the counter.
   */
  open(f: AuthFrame): boolean {
    if (f.counter <= this.counter) return false;
    if (this.cipher.decryptWithNonce(f.counter, f.signed, f.tag) === null) return false;
    this.counter = f.counter;
    return true;
  }

  /** The counter of the last frame sealed (to match an acknowledgement). */
  get lastSealed(): number { return this.counter; }

  destroy(): void { this.cipher.destroy(); }
}

/** Both directions of one registration, from this side's point of view. */
export interface ControlKeys { send: ControlChannel; receive: ControlChannel }

/**
 * The control keys of a completed registration handshake; the handshake state is zeroed
 * (ephemeral key, chaining key) in the same step, so no caller can forget it.
 */
export function controlKeysOf(hs: HandshakeState): ControlKeys {
  try {
    const { send, receive } = hs.split();
    return { send: new ControlChannel(send), receive: new ControlChannel(receive) };
  } finally {
    hs.destroy();
  }
}

export function destroyControlKeys(k: ControlKeys | undefined): void {
  k?.send.destroy();
  k?.receive.destroy();
}
