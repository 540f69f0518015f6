// Wire formats of the two port-mapping protocols the lab's probe speaks to miniupnpd:
// NAT-PMP (RFC 6886) and PCP MAP (RFC 6887), UDP mappings of IPv4 only. Pure: encoders
// and length-checked decoders that never throw (a bad datagram is a typed failure).
// Lab-only: the agent's port mapping is another module's job.

/** Server port of both protocols on the gateway. */
export const PORT_MAPPING_PORT = 5351;

// ---- NAT-PMP (RFC 6886 §3) ----
//
// External address request:  version u8 = 0 | opcode u8 = 0                         2 B
// External address response: version u8 = 0 | opcode u8 = 128 | result u16 |
//                            epoch u32 | external IPv4 4 B                           12 B
// Map UDP request:           version u8 = 0 | opcode u8 = 1 | reserved u16 = 0 |
//                            internal port u16 | suggested external port u16 |
//                            lifetime u32 (s; 0 deletes)                             12 B
// Map UDP response:          version u8 = 0 | opcode u8 = 129 | result u16 |
//                            epoch u32 | internal port u16 | external port u16 |
//                            lifetime u32                                            16 B
export const NATPMP_VERSION = 0;
export const NATPMP_OP_ADDRESS = 0;
export const NATPMP_OP_MAP_UDP = 1;
/** a response's opcode is the request's + 128 */
export const NATPMP_RESPONSE_BIT = 0x80;
const NATPMP_ADDRESS_RESPONSE_LEN = 12;
const NATPMP_MAP_REQUEST_LEN = 12;
const NATPMP_MAP_RESPONSE_LEN = 16;

export type Decoded<T> = { ok: true; value: T } | { ok: false; reason: string };

export function encodeNatPmpAddressRequest(): Uint8Array { return Uint8Array.of(NATPMP_VERSION, NATPMP_OP_ADDRESS); }

export function encodeNatPmpMapRequest(internalPort: number, suggestedExternalPort: number, lifetimeSec: number): Uint8Array {
  const b = new DataView(new ArrayBuffer(NATPMP_MAP_REQUEST_LEN));
  b.setUint8(0, NATPMP_VERSION);
  b.setUint8(1, NATPMP_OP_MAP_UDP);
  b.setUint16(4, internalPort);
  b.setUint16(6, suggestedExternalPort);
  b.setUint32(8, lifetimeSec);
  return new Uint8Array(b.buffer);
}

export interface NatPmpAddress { result: number; epoch: number; externalAddress: string }
export interface NatPmpMapping { result: number; epoch: number; internalPort: number; externalPort: number; lifetimeSec: number }

function natPmpHeader(buf: Uint8Array, op: number, len: number): DataView | string {
  if (buf.length !== len) return `length ${buf.length}, expected ${len}`;
  if (buf[0] !== NATPMP_VERSION) return `version ${buf[0]}`;
  if (buf[1] !== (op | NATPMP_RESPONSE_BIT)) return `opcode ${buf[1]}`;
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

export function decodeNatPmpAddressResponse(buf: Uint8Array): Decoded<NatPmpAddress> {
  const v = natPmpHeader(buf, NATPMP_OP_ADDRESS, NATPMP_ADDRESS_RESPONSE_LEN);
  if (typeof v === 'string') return { ok: false, reason: v };
  return { ok: true, value: { result: v.getUint16(2), epoch: v.getUint32(4), externalAddress: [...buf.subarray(8, 12)].join('.') } };
}

export function decodeNatPmpMapResponse(buf: Uint8Array): Decoded<NatPmpMapping> {
  const v = natPmpHeader(buf, NATPMP_OP_MAP_UDP, NATPMP_MAP_RESPONSE_LEN);
  if (typeof v === 'string') return { ok: false, reason: v };
  return { ok: true, value: { result: v.getUint16(2), epoch: v.getUint32(4), internalPort: v.getUint16(8), externalPort: v.getUint16(10), lifetimeSec: v.getUint32(12) } };
}

// ---- PCP MAP (RFC 6887 §7.1, §7.2, §11.1) ----
//
// Request:  version u8 = 2 | R=0,opcode u8 = 1 | reserved u16 | lifetime u32 |
//           client IP 16 B (IPv4-mapped)                                  header 24 B
// Response: version u8 = 2 | R=1,opcode u8 = 0x81 | reserved u8 | result u8 |
//           lifetime u32 | epoch u32 | reserved 12 B                      header 24 B
// MAP body (both): nonce 12 B | protocol u8 (17 = UDP) | reserved 3 B |
//           internal port u16 | (suggested | assigned) external port u16 |
//           (suggested | assigned) external IP 16 B (IPv4-mapped)               36 B
export const PCP_VERSION = 2;
export const PCP_OP_MAP = 1;
export const PCP_RESPONSE_BIT = 0x80;
export const PCP_NONCE_LEN = 12;
const PCP_HEADER_LEN = 24;
const PCP_MAP_BODY_LEN = 36;
const PCP_MAP_LEN = PCP_HEADER_LEN + PCP_MAP_BODY_LEN;
const IPPROTO_UDP = 17;

/** ::ffff:a.b.c.d, the form PCP carries an IPv4 address in (RFC 6887 §5); 0.0.0.0 = "no preference". */
function ipv4Mapped(addr: string): Uint8Array | null {
  const parts = addr.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) return null;
  const b = new Uint8Array(16);
  b[10] = 0xff; b[11] = 0xff;
  parts.forEach((p, i) => { b[12 + i] = Number(p); });
  return b;
}

function fromIpv4Mapped(b: Uint8Array): string | null {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return null;
  if (b[10] !== 0xff || b[11] !== 0xff) return null;
  return [...b.subarray(12, 16)].join('.');
}

/** Returns null if `clientAddress` is not an IPv4 address or the nonce is not 12 bytes. */
export function encodePcpMapRequest(o: { clientAddress: string; nonce: Uint8Array; internalPort: number; suggestedExternalPort: number; lifetimeSec: number }): Uint8Array | null {
  const client = ipv4Mapped(o.clientAddress);
  const any = ipv4Mapped('0.0.0.0')!;
  if (!client || o.nonce.length !== PCP_NONCE_LEN) return null;
  const buf = new Uint8Array(PCP_MAP_LEN);
  const v = new DataView(buf.buffer);
  v.setUint8(0, PCP_VERSION);
  v.setUint8(1, PCP_OP_MAP);
  v.setUint32(4, o.lifetimeSec);
  buf.set(client, 8);
  buf.set(o.nonce, PCP_HEADER_LEN);
  v.setUint8(PCP_HEADER_LEN + 12, IPPROTO_UDP);
  v.setUint16(PCP_HEADER_LEN + 16, o.internalPort);
  v.setUint16(PCP_HEADER_LEN + 18, o.suggestedExternalPort);
  buf.set(any, PCP_HEADER_LEN + 20);
  return buf;
}

export interface PcpMapping { result: number; lifetimeSec: number; epoch: number; nonce: Uint8Array; internalPort: number; externalPort: number; externalAddress: string }

export function decodePcpMapResponse(buf: Uint8Array): Decoded<PcpMapping> {
  // a response may carry options after the body: at least the body, a multiple of 4
  if (buf.length < PCP_MAP_LEN || buf.length % 4 !== 0) return { ok: false, reason: `length ${buf.length}` };
  if (buf[0] !== PCP_VERSION) return { ok: false, reason: `version ${buf[0]}` };
  if (buf[1] !== (PCP_OP_MAP | PCP_RESPONSE_BIT)) return { ok: false, reason: `opcode ${buf[1]}` };
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (v.getUint8(PCP_HEADER_LEN + 12) !== IPPROTO_UDP) return { ok: false, reason: `protocol ${v.getUint8(PCP_HEADER_LEN + 12)}` };
  const externalAddress = fromIpv4Mapped(buf.subarray(PCP_HEADER_LEN + 20, PCP_MAP_LEN));
  if (externalAddress === null) return { ok: false, reason: 'external address not IPv4-mapped' };
  return {
    ok: true,
    value: {
      result: v.getUint8(3), lifetimeSec: v.getUint32(4), epoch: v.getUint32(8),
      nonce: buf.slice(PCP_HEADER_LEN, PCP_HEADER_LEN + PCP_NONCE_LEN),
      internalPort: v.getUint16(PCP_HEADER_LEN + 16), externalPort: v.getUint16(PCP_HEADER_LEN + 18), externalAddress,
    },
  };
}
