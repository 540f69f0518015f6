// Byte layouts of the agent↔agent session messages (first byte 0x10–0x1F on the agent's
// UDP socket, ARCHITECTURE.md). WireGuard's framing applied to our Noise IK; every
// multi-byte integer is little-endian. Specified in docs/protocol/session.md.
//
// Initiation (0x11), 148 bytes:
//   0  type u8 = 0x11 | 1 reserved[3] = 0 | 4 sender_index u32
//   8  noise message 1 (108): ephemeral[32] | enc static[32+16] | enc timestamp[12+16]
//   116 mac1[16] over bytes 0..115 | 132 mac2[16] over bytes 0..131 (zero unless cookie)
// Response (0x12), 92 bytes:
//   0  type u8 = 0x12 | 1 reserved[3] | 4 sender_index u32 | 8 receiver_index u32
//   12 noise message 2 (48): ephemeral[32] | enc empty payload[16]
//   60 mac1[16] over 0..59 | 76 mac2[16] over 0..75
// Cookie reply (0x13), 64 bytes:
//   0  type u8 = 0x13 | 1 reserved[3] | 4 receiver_index u32 | 8 nonce[24] | 32 enc cookie[16+16]
// Transport (0x14), 16 + ciphertext (≥ 16) bytes:
//   0  type u8 = 0x14 | 1 reserved[3] | 4 receiver_index u32 | 8 counter u64 | 16 ciphertext
//   The counter is a Number in this code base, exact below 2^53 (src/noise/aead.ts): a wire
//   value at or above 2^53 decodes to a Number at or above 2^53, which receivers refuse.
//   The transport header is read and written byte by byte (no DataView, no BigInt): it is
//   on every packet's path.

export const MSG_INITIATION = 0x11;
export const MSG_RESPONSE = 0x12;
export const MSG_COOKIE_REPLY = 0x13;
export const MSG_TRANSPORT = 0x14;

export const MAC_LEN = 16;
export const TIMESTAMP_LEN = 12;
export const NOISE_MSG1_LEN = 32 + (32 + 16) + (TIMESTAMP_LEN + 16); // 108
export const NOISE_MSG2_LEN = 32 + 16; // 48
export const INITIATION_LEN = 8 + NOISE_MSG1_LEN + 2 * MAC_LEN; // 148
export const RESPONSE_LEN = 12 + NOISE_MSG2_LEN + 2 * MAC_LEN; // 92
export const COOKIE_NONCE_LEN = 24;
export const COOKIE_REPLY_LEN = 8 + COOKIE_NONCE_LEN + 16 + 16; // 64
export const TRANSPORT_HEADER_LEN = 16;
export const AEAD_TAG_LEN = 16;
/** What a transport message adds to its plaintext on the wire: header and AEAD tag (32 bytes). */
export const TRANSPORT_OVERHEAD_LEN = TRANSPORT_HEADER_LEN + AEAD_TAG_LEN;

export interface Initiation { senderIndex: number; noise: Uint8Array; mac1: Uint8Array; mac2: Uint8Array }
export interface Response { senderIndex: number; receiverIndex: number; noise: Uint8Array; mac1: Uint8Array; mac2: Uint8Array }
export interface CookieReply { receiverIndex: number; nonce: Uint8Array; encryptedCookie: Uint8Array }
export interface Transport { receiverIndex: number; counter: number; ciphertext: Uint8Array }

export type Decoded =
  | { type: 'initiation'; msg: Initiation }
  | { type: 'response'; msg: Response }
  | { type: 'cookie'; msg: CookieReply }
  | { type: 'transport'; msg: Transport }
  | { type: 'invalid'; reason: string };

function view(b: Uint8Array): DataView { return new DataView(b.buffer, b.byteOffset, b.byteLength); }
function reservedIsZero(b: Uint8Array): boolean { return b[1] === 0 && b[2] === 0 && b[3] === 0; }

export function encodeInitiation(m: Initiation): Uint8Array {
  if (m.noise.length !== NOISE_MSG1_LEN) throw new RangeError('noise message 1 must be 108 bytes');
  const out = new Uint8Array(INITIATION_LEN);
  out[0] = MSG_INITIATION;
  view(out).setUint32(4, m.senderIndex >>> 0, true);
  out.set(m.noise, 8);
  out.set(m.mac1, 8 + NOISE_MSG1_LEN);
  out.set(m.mac2, 8 + NOISE_MSG1_LEN + MAC_LEN);
  return out;
}

export function encodeResponse(m: Response): Uint8Array {
  if (m.noise.length !== NOISE_MSG2_LEN) throw new RangeError('noise message 2 must be 48 bytes');
  const out = new Uint8Array(RESPONSE_LEN);
  out[0] = MSG_RESPONSE;
  const dv = view(out);
  dv.setUint32(4, m.senderIndex >>> 0, true);
  dv.setUint32(8, m.receiverIndex >>> 0, true);
  out.set(m.noise, 12);
  out.set(m.mac1, 12 + NOISE_MSG2_LEN);
  out.set(m.mac2, 12 + NOISE_MSG2_LEN + MAC_LEN);
  return out;
}

export function encodeCookieReply(m: CookieReply): Uint8Array {
  if (m.nonce.length !== COOKIE_NONCE_LEN || m.encryptedCookie.length !== 32) throw new RangeError('bad cookie reply fields');
  const out = new Uint8Array(COOKIE_REPLY_LEN);
  out[0] = MSG_COOKIE_REPLY;
  view(out).setUint32(4, m.receiverIndex >>> 0, true);
  out.set(m.nonce, 8);
  out.set(m.encryptedCookie, 8 + COOKIE_NONCE_LEN);
  return out;
}

const TWO_POW_32 = 0x1_0000_0000;

/** Writes the 16-byte transport header at the start of `out` (counter: a safe integer). */
export function writeTransportHeader(out: Uint8Array, receiverIndex: number, counter: number): void {
  const lo = counter >>> 0;
  const hi = (counter - lo) / TWO_POW_32;
  out[0] = MSG_TRANSPORT; out[1] = 0; out[2] = 0; out[3] = 0;
  writeU32(out, 4, receiverIndex);
  writeU32(out, 8, lo);
  writeU32(out, 12, hi);
}

/**
 * The counter of a transport message (bytes 8..15, u64 LE). At or above 2^53 the sum is
 * rounded, but never below 2^53 (rounding is monotonic and 2^53 is exact): out of range.
 */
export function readTransportCounter(d: Uint8Array): number {
  return readU32(d, 12) * TWO_POW_32 + readU32(d, 8);
}

/**
 * The hot path's check of a transport message: its receiver index, or the reason it is
 * invalid (the same reasons as decodeSessionMessage). No object is made.
 */
export function transportReceiverIndex(d: Uint8Array): number | string {
  if (d.length < TRANSPORT_HEADER_LEN + AEAD_TAG_LEN) return 'transport_too_short';
  if (!reservedIsZero(d)) return 'reserved_nonzero';
  return readU32(d, 4);
}

function readU32(b: Uint8Array, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
}

function writeU32(b: Uint8Array, at: number, v: number): void {
  b[at] = v; b[at + 1] = v >>> 8; b[at + 2] = v >>> 16; b[at + 3] = v >>> 24;
}

/** Length-checked decoding; never throws. Returned fields are views into the datagram. */
export function decodeSessionMessage(d: Uint8Array): Decoded {
  if (d.length < 4) return { type: 'invalid', reason: 'too_short' };
  if (!reservedIsZero(d)) return { type: 'invalid', reason: 'reserved_nonzero' };
  switch (d[0]) {
    case MSG_INITIATION:
      if (d.length !== INITIATION_LEN) return { type: 'invalid', reason: 'initiation_length' };
      return { type: 'initiation', msg: {
        senderIndex: readU32(d, 4),
        noise: d.subarray(8, 8 + NOISE_MSG1_LEN),
        mac1: d.subarray(8 + NOISE_MSG1_LEN, 8 + NOISE_MSG1_LEN + MAC_LEN),
        mac2: d.subarray(8 + NOISE_MSG1_LEN + MAC_LEN, INITIATION_LEN),
      } };
    case MSG_RESPONSE:
      if (d.length !== RESPONSE_LEN) return { type: 'invalid', reason: 'response_length' };
      return { type: 'response', msg: {
        senderIndex: readU32(d, 4),
        receiverIndex: readU32(d, 8),
        noise: d.subarray(12, 12 + NOISE_MSG2_LEN),
        mac1: d.subarray(12 + NOISE_MSG2_LEN, 12 + NOISE_MSG2_LEN + MAC_LEN),
        mac2: d.subarray(12 + NOISE_MSG2_LEN + MAC_LEN, RESPONSE_LEN),
      } };
    case MSG_COOKIE_REPLY:
      if (d.length !== COOKIE_REPLY_LEN) return { type: 'invalid', reason: 'cookie_length' };
      return { type: 'cookie', msg: {
        receiverIndex: readU32(d, 4),
        nonce: d.subarray(8, 8 + COOKIE_NONCE_LEN),
        encryptedCookie: d.subarray(8 + COOKIE_NONCE_LEN, COOKIE_REPLY_LEN),
      } };
    case MSG_TRANSPORT:
      if (d.length < TRANSPORT_HEADER_LEN + AEAD_TAG_LEN) return { type: 'invalid', reason: 'transport_too_short' };
      return { type: 'transport', msg: {
        receiverIndex: readU32(d, 4),
        counter: readTransportCounter(d),
        ciphertext: d.subarray(TRANSPORT_HEADER_LEN),
      } };
    default:
      return { type: 'invalid', reason: 'unknown_type' };
  }
}
