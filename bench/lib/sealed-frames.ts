// Authenticated framing of the udx-proxy bench system (bench/udx-proxy.ts): each chunk
// read from TCP becomes one sealed frame on a udx-native stream, with the same AEAD the
// agent's Noise transport uses (src/noise/aead.ts: ChaCha20-Poly1305 IETF through
// sodium-native, key set once, in place, detached tag, a counter nonce).
//
// Frame layout (on a reliable, ordered udx byte stream, so frames need only a length):
//   [0..3)        n + 16: the length of the rest of the frame, u24 LE (1 ≤ n ≤
//                 MAX_FRAME_PLAINTEXT), authenticated as AD
//   [3..3+n)      ciphertext of n plaintext bytes
//   [3+n..3+n+16) Poly1305 tag
// The u24 prefix is what udx-native's framed mode (createStream(id, { framed: true }), as
// hyperdht uses it for secretstream) reads: its binding then hands JavaScript one whole
// frame per callback instead of one callback per ~1200-byte packet.
// Nonce (12 bytes): [0..4) the connection id, u32 LE (fixed per connection; 0 is the
// control stream) and [4..12) the frame counter, u64 LE, starting at 0. Every direction of
// every proxy pair has its own key, so (key, nonce) never repeats.
//
// What this does NOT cover is the point of the comparison: udx's own packet header
// (stream id, sequence and ACK numbers, flags) travels in clear and unauthenticated.
import { decryptDetached, encryptDetached, NONCE_LEN, TAG_LEN } from '../../src/noise/aead.js';

export const HEADER_LEN = 3;
/**
 * the largest plaintext per frame: two frames fit udx-native's 64 KiB + 2 KiB read buffer,
 * so framed mode delivers them whole (a 64 KiB TCP read becomes two frames)
 */
export const MAX_FRAME_PLAINTEXT = 32768;
export const FRAME_OVERHEAD = HEADER_LEN + TAG_LEN;

/** One direction of one connection: its key, its connection id, its frame counter. */
export class FrameSealer {
  private readonly nonce = Buffer.alloc(NONCE_LEN);
  private counter = 0;
  constructor(private readonly key: Uint8Array, connectionId: number) {
    this.nonce.writeUInt32LE(connectionId >>> 0, 0);
  }

  /** A new buffer holding the sealed frame of `plain` (≤ MAX_FRAME_PLAINTEXT bytes). */
  seal(plain: Uint8Array): Buffer {
    const n = plain.length;
    if (n < 1 || n > MAX_FRAME_PLAINTEXT) throw new RangeError(`frame plaintext of ${n} bytes`);
    const out = Buffer.allocUnsafe(FRAME_OVERHEAD + n);
    out.writeUIntLE(n + TAG_LEN, 0, HEADER_LEN);
    out.set(plain, HEADER_LEN);
    encryptDetached(this.key, this.nonce, this.counter++, out.subarray(0, HEADER_LEN), out.subarray(HEADER_LEN, HEADER_LEN + n), out.subarray(HEADER_LEN + n));
    return out;
  }
}

/**
 * The receiving direction: reassembles frames from the stream's chunks, verifies and
 * decrypts each in place. A frame that arrives whole inside one chunk is opened where it
 * lies (no copy); a frame split over chunks is gathered into one buffer first.
 */
export class FrameOpener {
  private readonly nonce = Buffer.alloc(NONCE_LEN);
  private counter = 0;
  private readonly head = Buffer.alloc(HEADER_LEN);
  private headFill = 0;
  private body: Buffer | null = null;
  private bodyFill = 0;
  private failed = false;
  constructor(private readonly key: Uint8Array, connectionId: number) {
    this.nonce.writeUInt32LE(connectionId >>> 0, 0);
  }

  /**
   * Feeds one chunk; calls onFrame with every plaintext it completes, in order. Returns
   * false (and ignores all later input) when a length is out of range or a tag does not
   * verify: the stream is then unusable and must be torn down.
   */
  push(chunk: Buffer, onFrame: (plain: Buffer) => void): boolean {
    let off = 0;
    while (!this.failed && off < chunk.length) {
      if (this.body === null) {
        // fast path: a whole frame at `off`, header included
        if (this.headFill === 0 && chunk.length - off >= HEADER_LEN) {
          const n = chunk.readUIntLE(off, HEADER_LEN) - TAG_LEN;
          if (!validLength(n)) return this.fail();
          const end = off + FRAME_OVERHEAD + n;
          if (end <= chunk.length) {
            if (!this.open(chunk.subarray(off, end), n, onFrame)) return this.fail();
            off = end;
            continue;
          }
        }
        const take = Math.min(HEADER_LEN - this.headFill, chunk.length - off);
        chunk.copy(this.head, this.headFill, off, off + take);
        this.headFill += take;
        off += take;
        if (this.headFill < HEADER_LEN) break;
        const n = this.head.readUIntLE(0, HEADER_LEN) - TAG_LEN;
        if (!validLength(n)) return this.fail();
        this.body = Buffer.allocUnsafe(FRAME_OVERHEAD + n);
        this.head.copy(this.body, 0);
        this.bodyFill = HEADER_LEN;
        this.headFill = 0;
      }
      const take = Math.min(this.body.length - this.bodyFill, chunk.length - off);
      chunk.copy(this.body, this.bodyFill, off, off + take);
      this.bodyFill += take;
      off += take;
      if (this.bodyFill === this.body.length) {
        const frame = this.body;
        this.body = null;
        if (!this.open(frame, frame.length - FRAME_OVERHEAD, onFrame)) return this.fail();
      }
    }
    return !this.failed;
  }

  private open(frame: Buffer, n: number, onFrame: (plain: Buffer) => void): boolean {
    const plain = frame.subarray(HEADER_LEN, HEADER_LEN + n);
    if (!decryptDetached(this.key, this.nonce, this.counter, frame.subarray(0, HEADER_LEN), plain, frame.subarray(HEADER_LEN + n))) return false;
    this.counter++;
    onFrame(plain);
    return true;
  }

  private fail(): false {
    this.failed = true;
    this.body = null;
    return false;
  }
}

function validLength(n: number): boolean {
  return n >= 1 && n <= MAX_FRAME_PLAINTEXT;
}
