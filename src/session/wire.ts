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
export interface Transport { receiverIndex: number; counter: bigint; ciphertext: Uint8Array }

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

/** Writes the 16-byte transport header in front of a ciphertext already placed at offset 16. */
export function encodeTransportHeader(out: Uint8Array, receiverIndex: number, counter: bigint): void {
  out[0] = MSG_TRANSPORT;
  out[1] = 0; out[2] = 0; out[3] = 0;
  const dv = view(out);
  dv.setUint32(4, receiverIndex >>> 0, true);
  dv.setBigUint64(8, counter, true);
}

/** Length-checked decoding; never throws. Returned fields are views into the datagram. */
export function decodeSessionMessage(d: Uint8Array): Decoded {
  if (d.length < 4) return { type: 'invalid', reason: 'too_short' };
  if (!reservedIsZero(d)) return { type: 'invalid', reason: 'reserved_nonzero' };
  const dv = view(d);
  switch (d[0]) {
    case MSG_INITIATION:
      if (d.length !== INITIATION_LEN) return { type: 'invalid', reason: 'initiation_length' };
      return { type: 'initiation', msg: {
        senderIndex: dv.getUint32(4, true),
        noise: d.subarray(8, 8 + NOISE_MSG1_LEN),
        mac1: d.subarray(8 + NOISE_MSG1_LEN, 8 + NOISE_MSG1_LEN + MAC_LEN),
        mac2: d.subarray(8 + NOISE_MSG1_LEN + MAC_LEN, INITIATION_LEN),
      } };
    case MSG_RESPONSE:
      if (d.length !== RESPONSE_LEN) return { type: 'invalid', reason: 'response_length' };
      return { type: 'response', msg: {
        senderIndex: dv.getUint32(4, true),
        receiverIndex: dv.getUint32(8, true),
        noise: d.subarray(12, 12 + NOISE_MSG2_LEN),
        mac1: d.subarray(12 + NOISE_MSG2_LEN, 12 + NOISE_MSG2_LEN + MAC_LEN),
        mac2: d.subarray(12 + NOISE_MSG2_LEN + MAC_LEN, RESPONSE_LEN),
      } };
    case MSG_COOKIE_REPLY:
      if (d.length !== COOKIE_REPLY_LEN) return { type: 'invalid', reason: 'cookie_length' };
      return { type: 'cookie', msg: {
        receiverIndex: dv.getUint32(4, true),
        nonce: d.subarray(8, 8 + COOKIE_NONCE_LEN),
        encryptedCookie: d.subarray(8 + COOKIE_NONCE_LEN, COOKIE_REPLY_LEN),
      } };
    case MSG_TRANSPORT:
      if (d.length < TRANSPORT_HEADER_LEN + AEAD_TAG_LEN) return { type: 'invalid', reason: 'transport_too_short' };
      return { type: 'transport', msg: {
        receiverIndex: dv.getUint32(4, true),
        counter: dv.getBigUint64(8, true),
        ciphertext: d.subarray(TRANSPORT_HEADER_LEN),
      } };
    default:
      return { type: 'invalid', reason: 'unknown_type' };
  }
}
