// PCP (RFC 6887) MAP request and response for one UDP mapping. Pure bytes; length-checked;
// decoding never throws. Server port 5351 (shared with NAT-PMP, whose servers answer a
// version-2 request with a NAT-PMP "unsupported version" message).
//
//   request header (24 B):  version u8 = 2 | R=0, opcode u8 = 1 (MAP) | reserved u16 |
//                           requested lifetime u32 (s) | client IP 16 B (IPv4-mapped)
//   response header (24 B): version u8 = 2 | R=1, opcode u8 = 0x81 | reserved u8 |
//                           result u8 | lifetime u32 | epoch u32 | reserved 12 B
//   MAP body (36 B):        nonce 12 B | protocol u8 (17 UDP) | reserved 3 B |
//                           internal port u16 | (suggested | assigned) external port u16 |
//                           (suggested | assigned) external IP 16 B
//   options: may follow the body; we send none and skip any in a response (the message is
//   a multiple of 4 bytes, at most 1100)
//
// Delete: the same MAP (same nonce, protocol, internal port) with lifetime 0.
import { ipBytes, ipText } from '../addresses.js';

export const PCP_VERSION = 2;
const OP_MAP = 1;
const RESPONSE_BIT = 0x80;
const HEADER_LEN = 24;
const MAP_LEN = 36;
export const PCP_MAP_LEN = HEADER_LEN + MAP_LEN;
const MAX_MESSAGE_LEN = 1100;
export const PCP_NONCE_LEN = 12;
const PROTO_UDP = 17;

/** RFC 6887 §7.4 result codes we act on (others are failures named by number) */
export const PCP_RESULT = { success: 0, unsupportedVersion: 1, notAuthorized: 2, noResources: 8, addressMismatch: 12 } as const;

/** IPv4-mapped IPv6 bytes (::ffff:a.b.c.d) of an IPv4 address; `::ffff:0.0.0.0` means "no preference". */
function mapped4(address: string): Uint8Array {
  const out = new Uint8Array(16);
  out[10] = 0xff; out[11] = 0xff;
  const b = ipBytes(address);
  if (b && b.length === 4) out.set(b, 12);
  return out;
}

export interface PcpMapRequest {
  nonce: Uint8Array;
  clientAddress: string;
  internalPort: number;
  suggestedExternalPort: number;
  lifetimeSec: number;
}

export function encodePcpMapRequest(r: PcpMapRequest): Uint8Array {
  if (r.nonce.length !== PCP_NONCE_LEN) throw new RangeError('PCP nonce must be 12 bytes');
  const b = new Uint8Array(PCP_MAP_LEN);
  const v = new DataView(b.buffer);
  b[0] = PCP_VERSION;
  b[1] = OP_MAP;
  v.setUint32(4, r.lifetimeSec >>> 0);
  b.set(mapped4(r.clientAddress), 8);
  b.set(r.nonce, HEADER_LEN);
  b[HEADER_LEN + 12] = PROTO_UDP;
  v.setUint16(HEADER_LEN + 16, r.internalPort);
  v.setUint16(HEADER_LEN + 18, r.suggestedExternalPort);
  b.set(mapped4('0.0.0.0'), HEADER_LEN + 20);
  return b;
}

export type PcpAnswer =
  | { kind: 'map'; result: number; lifetimeSec: number; epoch: number; nonce: Uint8Array; internalPort: number; externalPort: number; externalAddress: string }
  /** a NAT-PMP server's answer to our version-2 request: it speaks only NAT-PMP */
  | { kind: 'natpmp-only' }
  | { kind: 'invalid'; reason: string };

export function decodePcpAnswer(b: Uint8Array): PcpAnswer {
  if (b.length >= 4 && b[0] === 0 && b[1] === 128 + OP_MAP && (b[2]! << 8 | b[3]!) === PCP_RESULT.unsupportedVersion) return { kind: 'natpmp-only' };
  if (b.length < HEADER_LEN) return { kind: 'invalid', reason: 'short' };
  if (b[0] !== PCP_VERSION) return { kind: 'invalid', reason: 'version' };
  if (b[1] !== (RESPONSE_BIT | OP_MAP)) return { kind: 'invalid', reason: 'opcode' };
  if (b.length > MAX_MESSAGE_LEN || b.length % 4 !== 0) return { kind: 'invalid', reason: 'length' };
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const result = b[3]!;
  const lifetimeSec = v.getUint32(4);
  const epoch = v.getUint32(8);
  if (b.length < PCP_MAP_LEN) {
    // an error response may omit the body; a success may not
    if (result === PCP_RESULT.success) return { kind: 'invalid', reason: 'short' };
    return { kind: 'map', result, lifetimeSec, epoch, nonce: new Uint8Array(PCP_NONCE_LEN), internalPort: 0, externalPort: 0, externalAddress: '' };
  }
  if (b[HEADER_LEN + 12] !== PROTO_UDP) return { kind: 'invalid', reason: 'protocol' };
  const ip = b.subarray(HEADER_LEN + 20, HEADER_LEN + 36);
  const isMapped4 = ip.subarray(0, 10).every((x) => x === 0) && ip[10] === 0xff && ip[11] === 0xff;
  return {
    kind: 'map', result, lifetimeSec, epoch,
    nonce: b.slice(HEADER_LEN, HEADER_LEN + PCP_NONCE_LEN),
    internalPort: v.getUint16(HEADER_LEN + 16),
    externalPort: v.getUint16(HEADER_LEN + 18),
    externalAddress: isMapped4 ? ipText(ip.subarray(12)) : ipText(ip),
  };
}
