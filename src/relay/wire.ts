// Agent <-> relay frames (docs/protocol/relay.md): the one codec both the server and the
// client use. Same bytes over UDP (first byte in RELAY_FRAME_FIRST..RELAY_FRAME_LAST, the
// demultiplexing table in ARCHITECTURE.md) and inside WebSocket binary messages (one each).
// decodeFrame() never throws: a frame is either typed or a typed drop reason.
//
// Byte layouts (docs/protocol/relay.md has the table and the reasons):
//  0x20 HELLO        a->r | 0x20 | 0 0 0 | nonce (8) | zero padding |                64 bytes
//                    (padded so the relay's CHALLENGE is never larger: no amplification)
//  0x21 CHALLENGE    r->a | 0x21 | 0 0 0 | cookie (24) | nonce echo (8) |            36 bytes
//  0x22 REGISTER     a->r | 0x22 | 0 0 0 | cookie (24) | Noise IK message 1 (96) |  124 bytes
//                    prologue = "mpyc-relay/3" | cookie; payload empty
//  0x23 REGISTERED   r->a | 0x23 | 0 0 0 | Noise IK message 2 (62) |                66 bytes
//                    payload = status u8 | reason u8 | keepalive s u16 | expiry s u16
//                              | registration token (8)
//  0x24 SEND         a->r | 0x24 | registration token (8) | destination key (32) | payload |
//  0x25 RECV         r->a | 0x25 | source key (32) | payload |
//                    (the relay rewrites a SEND in place: RECV is its last length - 8 bytes)
//  0x26 PING         a->r | 0x26 | ping token (8) | registration token (8) |          17 bytes
//  0x27 PONG         r->a | 0x27 | ping token (8) |                                    9 bytes
//  0x2A NOT_REGISTERED r->a | 0x2A | 0 0 0 |  unauthenticated; see the client      4 bytes
// Authenticated control frames (control-auth.ts):
//                    | type | 0 0 0 | counter u64 BE (8) | body | tag (16) |
//  0x28 PEER_GONE    r->a  body = key (32)                                        60 bytes
//  0x29 RESTARTING   r->a  body empty                                             28 bytes
//  0x2C ACCEPT_FROM  a->r  body = count u8 | key (32) x count, count <= 32   29 + 32 count
//  0x2D ACCEPT_ACK   r->a  body = counter u64 of the ACCEPT_FROM applied          36 bytes
//  0x2E KEY_CONFLICT r->a  body empty                                             28 bytes
//  0x2F LEAVE        a->r  body empty: forget this registration now (it stops)    28 bytes
// 0x2B (version 1's unauthenticated REJECTED) is reserved.

/** The first-byte range of relay frames on a shared UDP socket (ARCHITECTURE.md). */
export const RELAY_FRAME_FIRST = 0x20;
export const RELAY_FRAME_LAST = 0x3f;

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
export const FRAME_ACCEPT_FROM = 0x2c;
export const FRAME_ACCEPT_ACK = 0x2d;
export const FRAME_KEY_CONFLICT = 0x2e;
/** a->r, authenticated, empty body: the agent stops; the relay forgets it at once instead of at expiry */
export const FRAME_LEAVE = 0x2f;

/** REGISTERED payload status */
export const STATUS_REGISTERED = 0;
export const STATUS_REJECTED = 1;
export const REJECT_NOT_ALLOWED = 1;
export const REJECT_FULL = 2;

export const HELLO_SIZE = 64;
export const NONCE_SIZE = 8;
export const COOKIE_SIZE = 24;
export const CHALLENGE_SIZE = 4 + COOKIE_SIZE + NONCE_SIZE;
export const KEY_SIZE = 32;
/** the random secret a registration's REGISTERED carries (encrypted) and every SEND and PING
 *  of that registration repeats: a sender of spoofed frames does not know it */
export const REG_TOKEN_SIZE = 8;
export const SEND_HEADER_SIZE = 1 + REG_TOKEN_SIZE + KEY_SIZE;
export const RECV_HEADER_SIZE = 1 + KEY_SIZE;
/** where the RECV starts inside the SEND it is rewritten from */
export const RECV_OFFSET_IN_SEND = SEND_HEADER_SIZE - RECV_HEADER_SIZE;
export const TOKEN_SIZE = 8;
export const PING_SIZE = 1 + TOKEN_SIZE + REG_TOKEN_SIZE;
export const PONG_SIZE = 1 + TOKEN_SIZE;
export const NOT_REGISTERED_SIZE = 4;
/** IK message 1 with empty payload: e (32) + enc s (48) + enc payload tag (16) */
export const IK_MSG1_SIZE = 96;
export const REGISTER_SIZE = 4 + COOKIE_SIZE + IK_MSG1_SIZE;
export const REGISTERED_PAYLOAD_SIZE = 6 + REG_TOKEN_SIZE;
/** IK message 2: e (32) + enc payload (14 + 16) */
export const IK_MSG2_SIZE = 32 + REGISTERED_PAYLOAD_SIZE + 16;
export const REGISTERED_SIZE = 4 + IK_MSG2_SIZE;
/** authenticated control frame: type, 3 zero bytes, counter u64 | body | tag */
export const AUTH_HEADER_SIZE = 4 + 8;
export const AUTH_TAG_SIZE = 16;
export const AUTH_OVERHEAD = AUTH_HEADER_SIZE + AUTH_TAG_SIZE;
/** Most keys one ACCEPT_FROM carries (and the relay keeps per agent): 32 keys keep the frame
 *  at 1053 bytes, under any Internet path's MTU; an MPC session has far fewer parties. */
export const MAX_ACCEPT_KEYS = 32;
/**
 * The largest frame the relay accepts or sends: the largest UDP payload over IPv4 (65 535
 * less the IP header 20 and the UDP header 8). Anything larger cannot be a datagram on every
 * path, so it is never needed; over IPv6 (65 527) and WebSocket the same bound holds, so a
 * frame can be forwarded between any two transports and families. Receive buffers are sized
 * for it (the WebSocket maxPayload on both sides).
 */
export const MAX_FRAME_SIZE = 65_535 - 20 - 8;
/** Largest opaque payload a SEND frame may carry by default: the whole of MAX_FRAME_SIZE.
 *  An agent on loopback or a LAN sends 64 KiB packets; over the Internet its probes find
 *  ~1400 (docs/protocol/paths.md "Packet size per path"). */
export const DEFAULT_MAX_PAYLOAD = MAX_FRAME_SIZE - SEND_HEADER_SIZE;

export const NOISE_PROTOCOL = 'Noise_IK_25519_ChaChaPoly_BLAKE2s';
/** protocol version 3 (the registration token); version 2 clients fail the handshake */
const PROLOGUE_LABEL = new TextEncoder().encode('mpyc-relay/3');

/** Is this datagram a relay frame (first byte 0x20-0x3F)? The agent's demultiplexer uses it. */
export function isRelayFrame(buf: Uint8Array): boolean {
  return buf.length > 0 && buf[0]! >= RELAY_FRAME_FIRST && buf[0]! <= RELAY_FRAME_LAST;
}

// ---------------------------------------------------------------- decoding

/** Why a frame was not accepted by the codec; the relay counts it under this name
 *  (mpyc_relay_dropped_total{reason}); reserved types in the range are 'unexpected_frame'. */
export type FrameDrop = 'unknown_type' | 'malformed' | 'oversized' | 'unexpected_frame';

/** An authenticated control frame as decoded: not yet verified (control-auth.ts does that). */
export interface AuthFrame {
  /** counter u64 as read (the AEAD nonce); above 2^53 - 1 the frame is malformed, which a
   *  sender reaches after 9e15 control frames of one registration, i.e. never */
  counter: number;
  body: Uint8Array;
  /** every byte before the tag: the AEAD's associated data */
  signed: Uint8Array;
  tag: Uint8Array;
}

export type RelayFrame =
  | { type: typeof FRAME_HELLO; nonce: Uint8Array }
  | { type: typeof FRAME_CHALLENGE; cookie: Uint8Array; nonce: Uint8Array }
  | { type: typeof FRAME_REGISTER; cookie: Uint8Array; ikMessage1: Uint8Array }
  | { type: typeof FRAME_REGISTERED; ikMessage2: Uint8Array }
  | { type: typeof FRAME_SEND; regToken: Uint8Array; payload: Uint8Array }
  | { type: typeof FRAME_RECV; payload: Uint8Array }
  | { type: typeof FRAME_PING; token: Uint8Array; regToken: Uint8Array }
  | { type: typeof FRAME_PONG; token: Uint8Array }
  | { type: typeof FRAME_NOT_REGISTERED }
  | ({ type: typeof FRAME_PEER_GONE; key: Uint8Array } & AuthFrame)
  | ({ type: typeof FRAME_RESTARTING | typeof FRAME_KEY_CONFLICT } & AuthFrame)
  | ({ type: typeof FRAME_LEAVE } & AuthFrame)
  | ({ type: typeof FRAME_ACCEPT_FROM; keys: Uint8Array[] } & AuthFrame)
  | ({ type: typeof FRAME_ACCEPT_ACK; acked: number } & AuthFrame);

export type Decoded = { ok: true; frame: RelayFrame } | { ok: false; drop: FrameDrop };

const drop = (d: FrameDrop): Decoded => ({ ok: false, drop: d });
const ok = (frame: RelayFrame): Decoded => ({ ok: true, frame });

/** u64 BE as a Number, or -1 when it exceeds Number.MAX_SAFE_INTEGER. */
function u64(buf: Uint8Array, off: number): number {
  const v = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).readBigUInt64BE(off);
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? -1 : Number(v);
}

/** Splits an authenticated frame of exactly `bodySize` body bytes, or null. */
function authParts(buf: Uint8Array, bodySize: number): AuthFrame | null {
  if (buf.length !== AUTH_OVERHEAD + bodySize || buf[1] !== 0 || buf[2] !== 0 || buf[3] !== 0) return null;
  const counter = u64(buf, 4);
  if (counter < 0) return null;
  const tagAt = AUTH_HEADER_SIZE + bodySize;
  return {
    counter, body: buf.subarray(AUTH_HEADER_SIZE, tagAt),
    signed: buf.subarray(0, tagAt), tag: buf.subarray(tagAt),
  };
}

/**
 * Check a SEND (or, with RECV_HEADER_SIZE, a RECV) frame without allocating (the
 * forwarding hot path): undefined when it is well formed with a payload of at most
 * maxPayload bytes.
 */
export function dataFrameProblem(buf: Uint8Array, maxPayload: number, header = SEND_HEADER_SIZE): FrameDrop | undefined {
  if (buf.length < header) return 'malformed';
  if (buf.length - header > maxPayload) return 'oversized';
  return undefined;
}

/** Does the registration token at `offset` of a frame equal `token` (two int32s, see
 *  tokenWords)? No early exit: the time does not depend on where they differ. */
export function tokenMatches(buf: Buffer, offset: number, token: readonly [number, number]): boolean {
  return ((buf.readInt32LE(offset) ^ token[0]) | (buf.readInt32LE(offset + 4) ^ token[1])) === 0;
}

/** A registration token as the two int32s tokenMatches compares (small integers: no boxing). */
export function tokenWords(token: Uint8Array): [number, number] {
  const b = Buffer.from(token.buffer, token.byteOffset, REG_TOKEN_SIZE);
  return [b.readInt32LE(0), b.readInt32LE(4)];
}

/** The bytes of a registration token held as tokenWords (for a REGISTERED that repeats it). */
export function tokenBytes(words: readonly [number, number]): Uint8Array {
  const b = Buffer.alloc(REG_TOKEN_SIZE);
  b.writeInt32LE(words[0], 0);
  b.writeInt32LE(words[1], 4);
  return b;
}

/** Decode one frame. Views into `buf` (no copies); never throws. */
export function decodeFrame(buf: Uint8Array, maxPayload = DEFAULT_MAX_PAYLOAD): Decoded {
  if (buf.length === 0) return drop('malformed');
  const t = buf[0]!;
  if (t < RELAY_FRAME_FIRST || t > RELAY_FRAME_LAST) return drop('unknown_type');
  const n = buf.length;
  switch (t) {
    case FRAME_HELLO:
      return n === HELLO_SIZE ? ok({ type: t, nonce: buf.subarray(4, 4 + NONCE_SIZE) }) : drop('malformed');
    case FRAME_CHALLENGE:
      return n === CHALLENGE_SIZE
        ? ok({ type: t, cookie: buf.subarray(4, 4 + COOKIE_SIZE), nonce: buf.subarray(4 + COOKIE_SIZE) })
        : drop('malformed');
    case FRAME_REGISTER:
      return n === REGISTER_SIZE
        ? ok({ type: t, cookie: buf.subarray(4, 4 + COOKIE_SIZE), ikMessage1: buf.subarray(4 + COOKIE_SIZE) })
        : drop('malformed');
    case FRAME_REGISTERED:
      return n === REGISTERED_SIZE ? ok({ type: t, ikMessage2: buf.subarray(4) }) : drop('malformed');
    case FRAME_SEND: {
      const p = dataFrameProblem(buf, maxPayload);
      return p ? drop(p) : ok({ type: t, regToken: buf.subarray(1, 1 + REG_TOKEN_SIZE), payload: buf.subarray(SEND_HEADER_SIZE) });
    }
    case FRAME_RECV: {
      const p = dataFrameProblem(buf, maxPayload, RECV_HEADER_SIZE);
      return p ? drop(p) : ok({ type: t, payload: buf.subarray(RECV_HEADER_SIZE) });
    }
    case FRAME_PING:
      return n === PING_SIZE ? ok({ type: t, token: buf.subarray(1, 1 + TOKEN_SIZE), regToken: buf.subarray(1 + TOKEN_SIZE) }) : drop('malformed');
    case FRAME_PONG:
      return n === PONG_SIZE ? ok({ type: t, token: buf.subarray(1) }) : drop('malformed');
    case FRAME_NOT_REGISTERED:
      return n === NOT_REGISTERED_SIZE ? ok({ type: t }) : drop('malformed');
    case FRAME_PEER_GONE: {
      const a = authParts(buf, KEY_SIZE);
      return a ? ok({ type: t, key: a.body, ...a }) : drop('malformed');
    }
    case FRAME_RESTARTING:
    case FRAME_KEY_CONFLICT:
    case FRAME_LEAVE: {
      const a = authParts(buf, 0);
      return a ? ok({ type: t, ...a }) : drop('malformed');
    }
    case FRAME_ACCEPT_ACK: {
      const a = authParts(buf, 8);
      const acked = a ? u64(a.body, 0) : -1;
      return a && acked >= 0 ? ok({ type: t, acked, ...a }) : drop('malformed');
    }
    case FRAME_ACCEPT_FROM: {
      if (n < AUTH_OVERHEAD + 1) return drop('malformed');
      const count = buf[AUTH_HEADER_SIZE]!;
      if (count > MAX_ACCEPT_KEYS) return drop('malformed');
      const a = authParts(buf, 1 + count * KEY_SIZE);
      if (!a) return drop('malformed');
      const keys: Uint8Array[] = [];
      for (let i = 0; i < count; i++) keys.push(a.body.subarray(1 + i * KEY_SIZE, 1 + (i + 1) * KEY_SIZE));
      return ok({ type: t, keys, ...a });
    }
    default:
      return drop('unexpected_frame');
  }
}

// ---------------------------------------------------------------- encoding

export function registrationPrologue(cookie: Uint8Array): Uint8Array {
  const p = new Uint8Array(PROLOGUE_LABEL.length + cookie.length);
  p.set(PROLOGUE_LABEL, 0);
  p.set(cookie, PROLOGUE_LABEL.length);
  return p;
}

/** HELLO; the nonce (8 bytes) comes back in the CHALLENGE. Zero if not given (tools). */
export function encodeHello(nonce?: Uint8Array): Uint8Array {
  const b = new Uint8Array(HELLO_SIZE);
  b[0] = FRAME_HELLO;
  if (nonce) b.set(nonce.subarray(0, NONCE_SIZE), 4);
  return b;
}

export function encodeChallenge(cookie: Uint8Array, nonce: Uint8Array): Uint8Array {
  const b = new Uint8Array(CHALLENGE_SIZE);
  b[0] = FRAME_CHALLENGE;
  b.set(cookie, 4);
  b.set(nonce.subarray(0, NONCE_SIZE), 4 + COOKIE_SIZE);
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

/** The REGISTERED payload; `token` (REG_TOKEN_SIZE bytes) is zero in a rejection. */
export interface RegisteredPayload { status: number; reason: number; keepaliveS: number; expiryS: number; token: Uint8Array }

export function encodeRegisteredPayload(p: RegisteredPayload): Uint8Array {
  const b = new Uint8Array(REGISTERED_PAYLOAD_SIZE);
  b.set([p.status, p.reason, p.keepaliveS >> 8, p.keepaliveS & 0xff, p.expiryS >> 8, p.expiryS & 0xff]);
  b.set(p.token.subarray(0, REG_TOKEN_SIZE), 6);
  return b;
}

export function decodeRegisteredPayload(p: Uint8Array): RegisteredPayload | null {
  if (p.length !== REGISTERED_PAYLOAD_SIZE) return null;
  return { status: p[0]!, reason: p[1]!, keepaliveS: (p[2]! << 8) | p[3]!, expiryS: (p[4]! << 8) | p[5]!, token: new Uint8Array(p.subarray(6)) };
}

/** SEND frame; one allocation, payload copied once. */
export function encodeSend(regToken: Uint8Array, destKey: Uint8Array, payload: Uint8Array): Uint8Array {
  const b = Buffer.allocUnsafe(SEND_HEADER_SIZE + payload.length);
  b[0] = FRAME_SEND;
  b.set(regToken.subarray(0, REG_TOKEN_SIZE), 1);
  b.set(destKey, 1 + REG_TOKEN_SIZE);
  b.set(payload, SEND_HEADER_SIZE);
  return b;
}

/** PING: the ping token comes back in the PONG; the registration token proves the sender. */
export function encodePing(token: Uint8Array, regToken: Uint8Array): Uint8Array {
  const b = new Uint8Array(PING_SIZE);
  b[0] = FRAME_PING;
  b.set(token.subarray(0, TOKEN_SIZE), 1);
  b.set(regToken.subarray(0, REG_TOKEN_SIZE), 1 + TOKEN_SIZE);
  return b;
}

export function encodePong(token: Uint8Array): Uint8Array {
  const b = new Uint8Array(PONG_SIZE);
  b[0] = FRAME_PONG;
  b.set(token.subarray(0, TOKEN_SIZE), 1);
  return b;
}

export function encodeNotRegistered(): Uint8Array {
  const b = new Uint8Array(NOT_REGISTERED_SIZE);
  b[0] = FRAME_NOT_REGISTERED;
  return b;
}

export type AuthFrameType =
  typeof FRAME_PEER_GONE | typeof FRAME_RESTARTING | typeof FRAME_KEY_CONFLICT
  | typeof FRAME_ACCEPT_FROM | typeof FRAME_ACCEPT_ACK | typeof FRAME_LEAVE;

/** An authenticated frame with a zero tag; control-auth.ts fills the tag in place. */
export function encodeAuthFrame(type: AuthFrameType, counter: number, body: Uint8Array): Buffer {
  const b = Buffer.alloc(AUTH_OVERHEAD + body.length);
  b[0] = type;
  b.writeBigUInt64BE(BigInt(counter), 4);
  b.set(body, AUTH_HEADER_SIZE);
  return b;
}

export function acceptFromBody(keys: readonly Uint8Array[]): Uint8Array {
  if (keys.length > MAX_ACCEPT_KEYS) throw new RangeError(`ACCEPT_FROM carries at most ${MAX_ACCEPT_KEYS} keys`);
  const b = new Uint8Array(1 + keys.length * KEY_SIZE);
  b[0] = keys.length;
  keys.forEach((k, i) => b.set(k, 1 + i * KEY_SIZE));
  return b;
}

export function acceptAckBody(acked: number): Uint8Array {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(acked), 0);
  return b;
}
