// Agent <-> relay frames (docs/protocol/relay.md). Same bytes over UDP (first byte
// 0x20-0x3F, ARCHITECTURE.md) and inside WebSocket binary messages (one frame each).
//
//  0x20 HELLO       a->r  | 0x20 | 0 0 0 | zero padding to 64 bytes |           64 bytes
//                   (padded so the relay's CHALLENGE is never larger: no amplification)
//  0x21 CHALLENGE   r->a  | 0x21 | 0 0 0 | cookie (24) |                          28 bytes
//                   cookie = time u32 BE (relay seconds) | rand (4) | MAC (16);
//                   MAC = BLAKE2s-128 keyed by a relay secret over time|rand|source
//  0x22 REGISTER    a->r  | 0x22 | 0 0 0 | cookie (24) | Noise IK message 1 |
//                   prologue = "mpyc-relay/1" | cookie; payload empty
//  0x23 REGISTERED  r->a  | 0x23 | 0 0 0 | Noise IK message 2 |
//                   payload = keepalive interval s u16 BE | expiry s u16 BE
//  0x24 SEND        a->r  | 0x24 | destination key (32) | opaque payload |
//  0x25 RECV        r->a  | 0x25 | source key (32)      | opaque payload |
//                   (same length as SEND: the relay rewrites the frame in place)
//  0x26 PING        either| 0x26 | token (8) |
//  0x27 PONG        either| 0x27 | token (8) |
//  0x28 PEER_GONE   r->a  | 0x28 | key (32) |  (rate-limited per sender)
//  0x29 RESTARTING  r->a  | 0x29 | 0 0 0 |
//  0x2A NOT_REGISTERED r->a | 0x2A | 0 0 0 |  reply to a SEND or PING from an unknown source
//                   (rate-limited), so the agent re-registers at once after a relay restart
//  0x2B REJECTED    r->a  | 0x2B | reason u8 | 0 0 |  registration refused (1 = not allowed,
//                   2 = relay full)

export const FRAME_HELLO = 0x20;
export const FRAME_CHALLENGE = 0x21;
export const FRAME_REGISTER = 0x22;
export const FRAME_REGISTERED = 0x23;
export const FRAME_SEND = 0x24;
export const FRAME_RECV = 0x25;
export const FRAME_PING = 0x26;
export const FRAME_PONG = 0x27;
export const FRAME_PEER_GONE = 0x28;
export const FRAME_RESTARTING = 0x29;
export const FRAME_NOT_REGISTERED = 0x2a;
export const FRAME_REJECTED = 0x2b;

export const REJECT_NOT_ALLOWED = 1;
export const REJECT_FULL = 2;

export const HELLO_SIZE = 64;
export const COOKIE_SIZE = 24;
export const CHALLENGE_SIZE = 4 + COOKIE_SIZE;
export const KEY_SIZE = 32;
export const SEND_HEADER_SIZE = 1 + KEY_SIZE;
export const PING_SIZE = 9;
export const PEER_GONE_SIZE = 1 + KEY_SIZE;
/** IK message 1 with empty payload: e (32) + enc s (48) + enc payload tag (16) */
export const IK_MSG1_SIZE = 96;
export const REGISTER_SIZE = 4 + COOKIE_SIZE + IK_MSG1_SIZE;
/** IK message 2 with a 4-byte payload: e (32) + enc payload (4 + 16) */
export const IK_MSG2_SIZE = 52;
export const REGISTERED_SIZE = 4 + IK_MSG2_SIZE;
/** Largest opaque payload a SEND frame may carry (an agent packet is <= ~1300 bytes). */
export const DEFAULT_MAX_PAYLOAD = 1400;

export const NOISE_PROTOCOL = 'Noise_IK_25519_ChaChaPoly_BLAKE2s';
const PROLOGUE_LABEL = new TextEncoder().encode('mpyc-relay/1');

export function isRelayFrame(buf: Uint8Array): boolean {
  return buf.length > 0 && buf[0]! >= 0x20 && buf[0]! <= 0x3f;
}

export function registrationPrologue(cookie: Uint8Array): Uint8Array {
  const p = new Uint8Array(PROLOGUE_LABEL.length + cookie.length);
  p.set(PROLOGUE_LABEL, 0);
  p.set(cookie, PROLOGUE_LABEL.length);
  return p;
}

export function encodeHello(): Uint8Array {
  const b = new Uint8Array(HELLO_SIZE);
  b[0] = FRAME_HELLO;
  return b;
}

export function encodeChallenge(cookie: Uint8Array): Uint8Array {
  const b = new Uint8Array(CHALLENGE_SIZE);
  b[0] = FRAME_CHALLENGE;
  b.set(cookie, 4);
  return b;
}

export function encodeRegister(cookie: Uint8Array, ikMessage1: Uint8Array): Uint8Array {
  const b = new Uint8Array(4 + COOKIE_SIZE + ikMessage1.length);
  b[0] = FRAME_REGISTER;
  b.set(cookie, 4);
  b.set(ikMessage1, 4 + COOKIE_SIZE);
  return b;
}

export function encodeRegistered(ikMessage2: Uint8Array): Uint8Array {
  const b = new Uint8Array(4 + ikMessage2.length);
  b[0] = FRAME_REGISTERED;
  b.set(ikMessage2, 4);
  return b;
}

export function encodeRegisteredPayload(keepaliveS: number, expiryS: number): Uint8Array {
  return new Uint8Array([keepaliveS >> 8, keepaliveS & 0xff, expiryS >> 8, expiryS & 0xff]);
}

export function decodeRegisteredPayload(p: Uint8Array): { keepaliveS: number; expiryS: number } | null {
  if (p.length !== 4) return null;
  return { keepaliveS: (p[0]! << 8) | p[1]!, expiryS: (p[2]! << 8) | p[3]! };
}

/** SEND frame; one allocation, payload copied once. */
export function encodeSend(destKey: Uint8Array, payload: Uint8Array): Uint8Array {
  const b = Buffer.allocUnsafe(SEND_HEADER_SIZE + payload.length);
  b[0] = FRAME_SEND;
  b.set(destKey, 1);
  b.set(payload, SEND_HEADER_SIZE);
  return b;
}

export function encodePingLike(type: typeof FRAME_PING | typeof FRAME_PONG, token: Uint8Array): Uint8Array {
  const b = new Uint8Array(PING_SIZE);
  b[0] = type;
  b.set(token.subarray(0, 8), 1);
  return b;
}

export function encodePeerGone(key: Uint8Array): Uint8Array {
  const b = new Uint8Array(PEER_GONE_SIZE);
  b[0] = FRAME_PEER_GONE;
  b.set(key, 1);
  return b;
}

export function encodeSimple(type: typeof FRAME_RESTARTING | typeof FRAME_NOT_REGISTERED): Uint8Array {
  const b = new Uint8Array(4);
  b[0] = type;
  return b;
}

export function encodeRejected(reason: number): Uint8Array {
  return new Uint8Array([FRAME_REJECTED, reason, 0, 0]);
}
