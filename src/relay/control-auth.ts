// Authenticated relay control frames (docs/protocol/relay.md, "Authenticated control
// frames"): both ends of a registration hold the two keys of the IK handshake's split();
// every frame that changes an agent's state carries a counter and a ChaCha20-Poly1305 tag
// over the whole frame (empty plaintext, the frame as associated data).
//
//   | type | 0 0 0 | counter u64 BE | body | tag (16) |
//
// Memory: the relay holds these keys for every registered agent, so they are raw bytes in
// one 64-byte slot of a shared slab (key-slab.ts) — send key ‖ receive key — with two
// counters, not two CipherState objects with their own key and nonce buffers (10k agents:
// 117 MB → see docs/relay.md "Sizing"). One nonce buffer serves every operation: libsodium
// reads it during the call only, and the calls are synchronous.
import { NONCE_LEN, KEY_LEN, decryptDetached, encryptDetached } from '../noise/aead.js';
import type { HandshakeState } from '../noise/index.js';
import { KeySlab } from './key-slab.js';
import { AUTH_TAG_SIZE, encodeAuthFrame, type AuthFrame, type AuthFrameType } from './wire.js';

const EMPTY = new Uint8Array(0);
const NONCE = new Uint8Array(NONCE_LEN);
/** every registration's key pair, in this process */
const slab = new KeySlab(2 * KEY_LEN);

/** Both directions of one registration, from this side's point of view. */
export class ControlKeys {
  /** send key (0..31) ‖ receive key (32..63); undefined once destroyed */
  private keys: Uint8Array | undefined;
  /** the last counter sealed */
  private sent = 0;
  /** the highest counter accepted */
  private received = 0;

  /** Takes the slot (the caller must not keep it). */
  constructor(keys: Uint8Array) {
    this.keys = keys;
  }

  /** An authenticated frame of `type` carrying `body`. Throws once destroyed (a bug of the caller). */
  seal(type: AuthFrameType, body: Uint8Array = EMPTY): Buffer {
    if (!this.keys) throw new Error('control keys destroyed');
    this.sent++;
    const f = encodeAuthFrame(type, this.sent, body);
    const tagAt = f.length - AUTH_TAG_SIZE;
    encryptDetached(this.keys.subarray(0, KEY_LEN), NONCE, this.sent, f.subarray(0, tagAt), EMPTY, f.subarray(tagAt));
    return f;
  }

  /**
   * Verify a decoded authenticated frame: its counter must be newer than every one accepted
   * before (replays and reordered stale frames fail) and its tag must verify (constant
   * time, inside libsodium). Only a frame that passes advances the counter.
   */
  open(f: AuthFrame): boolean {
    if (!this.keys || f.counter <= this.received) return false;
    if (!decryptDetached(this.keys.subarray(KEY_LEN), NONCE, f.counter, f.signed, EMPTY, f.tag)) return false;
    this.received = f.counter;
    return true;
  }

  /** The counter of the last frame sealed (to match an acknowledgement). */
  get lastSealed(): number { return this.sent; }

  /** Zero both keys (and give the slot back). Idempotent. */
  destroy(): void {
    if (!this.keys) return;
    slab.release(this.keys);
    this.keys = undefined;
  }
}

/**
 * The control keys of a completed registration handshake; the handshake state is zeroed
 * (ephemeral key, chaining key) in the same step, so no caller can forget it.
 */
export function controlKeysOf(hs: HandshakeState): ControlKeys {
  const keys = slab.alloc();
  try {
    hs.splitInto(keys.subarray(0, KEY_LEN), keys.subarray(KEY_LEN));
    return new ControlKeys(keys);
  } catch (err) {
    slab.release(keys);
    throw err;
  } finally {
    hs.destroy();
  }
}

/** control-key slots held in this process (tests: every registration's keys are released) */
export function controlKeysInUse(): number { return slab.inUse; }
