// STUN Binding codec (RFC 8489), just what a reflexive-address service needs.
//
// Message header (20 bytes, network byte order):
//   0      2      4               8                              20
//   | type | len  | magic cookie  | transaction id (96 bits)      |
//   type: top two bits zero; Binding request 0x0001, success 0x0101, error 0x0111
//   len:  length of the attributes after the header, a multiple of 4
//   magic cookie: 0x2112A442
// Attribute (TLV): | type u16 | length u16 | value, padded to 4 bytes |
//   0x0001 MAPPED-ADDRESS      | 0 | family (1=IPv4, 2=IPv6) | port u16 | addr 4/16 |
//   0x0020 XOR-MAPPED-ADDRESS  same, port ^ 0x2112, addr ^ (cookie || txid)
//   0x0009 ERROR-CODE          | 0 0 | class (3 bits) | number | reason UTF-8 |
//   0x000A UNKNOWN-ATTRIBUTES  list of u16 attribute types
//   0x8022 SOFTWARE            UTF-8 text (we do not send it: no fingerprinting aid)
//   0x802C OTHER-ADDRESS       RFC 5780 §7.4: the server's other STUN endpoint, in
//                              MAPPED-ADDRESS form (not XORed); comprehension-optional
//   0x8028 FINGERPRINT         CRC-32 of the message before it, XOR 0x5354554e;
//                              must be the last attribute
// Types 0x0000-0x7FFF are comprehension-required: a request carrying one we do not
// understand gets a 420 error listing them; a response carrying one is discarded.
// Parsing never throws: it returns null (with a reason) for malformed input.

export const STUN_MAGIC_COOKIE = 0x2112a442;
export const STUN_HEADER_SIZE = 20;
export const BINDING_REQUEST = 0x0001;
export const BINDING_SUCCESS = 0x0101;
export const BINDING_ERROR = 0x0111;
export const BINDING_INDICATION = 0x0011;

export const ATTR_MAPPED_ADDRESS = 0x0001;
export const ATTR_USERNAME = 0x0006;
export const ATTR_MESSAGE_INTEGRITY = 0x0008;
export const ATTR_ERROR_CODE = 0x0009;
export const ATTR_UNKNOWN_ATTRIBUTES = 0x000a;
export const ATTR_REALM = 0x0014;
export const ATTR_NONCE = 0x0015;
export const ATTR_MESSAGE_INTEGRITY_SHA256 = 0x001c;
export const ATTR_USERHASH = 0x001e;
export const ATTR_XOR_MAPPED_ADDRESS = 0x0020;
export const ATTR_SOFTWARE = 0x8022;
export const ATTR_OTHER_ADDRESS = 0x802c;
export const ATTR_FINGERPRINT = 0x8028;
const FINGERPRINT_XOR = 0x5354554e;

/**
 * Comprehension-required attributes we accept without acting on them. Binding needs no
 * credentials here, so authentication attributes are tolerated and ignored rather than
 * failing a client that adds them (RFC 8489 §6.3.4: a server without credentials
 * processes the request as unauthenticated).
 */
const KNOWN_REQUIRED = new Set([
  ATTR_MAPPED_ADDRESS, ATTR_USERNAME, ATTR_MESSAGE_INTEGRITY, ATTR_ERROR_CODE,
  ATTR_UNKNOWN_ATTRIBUTES, ATTR_REALM, ATTR_NONCE, ATTR_MESSAGE_INTEGRITY_SHA256,
  ATTR_USERHASH, ATTR_XOR_MAPPED_ADDRESS,
]);

export interface StunAddress {
  family: 'IPv4' | 'IPv6';
  address: string;
  port: number;
}

export interface StunMessage {
  type: number;
  transactionId: Uint8Array; // 12 bytes (a view into the parsed buffer)
  mappedAddress?: StunAddress; // XOR-MAPPED-ADDRESS, else MAPPED-ADDRESS
  /** RFC 5780 OTHER-ADDRESS; a malformed one is ignored (the attribute is optional) */
  otherAddress?: StunAddress;
  errorCode?: number;
  errorReason?: string;
  /** comprehension-required attribute types we do not understand */
  unknownRequired: number[];
  hasFingerprint: boolean;
}

export type StunParseResult = { ok: true; message: StunMessage } | { ok: false; reason: string };

// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), table-driven.
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(buf: Uint8Array, start = 0, end = buf.length): number {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Cheap demultiplexing test (ARCHITECTURE.md): first byte 0x00-0x03, cookie, len%4. */
export function looksLikeStun(buf: Uint8Array): boolean {
  if (buf.length < STUN_HEADER_SIZE || buf[0]! > 0x03) return false;
  if (buf[4] !== 0x21 || buf[5] !== 0x12 || buf[6] !== 0xa4 || buf[7] !== 0x42) return false;
  return ((buf[2]! << 8) | buf[3]!) % 4 === 0;
}

function view(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

function parseAddress(v: Uint8Array, xor: boolean, txid: Uint8Array): StunAddress | null {
  if (v.length < 4) return null;
  const fam = v[1];
  let port = (v[2]! << 8) | v[3]!;
  if (xor) port ^= STUN_MAGIC_COOKIE >>> 16;
  const mask = new Uint8Array(16);
  if (xor) {
    mask.set([0x21, 0x12, 0xa4, 0x42], 0);
    mask.set(txid, 4);
  }
  if (fam === 0x01) {
    if (v.length !== 8) return null;
    const a: number[] = [];
    for (let i = 0; i < 4; i++) a.push(v[4 + i]! ^ mask[i]!);
    return { family: 'IPv4', address: a.join('.'), port };
  }
  if (fam === 0x02) {
    if (v.length !== 20) return null;
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) {
      const g = ((v[4 + i]! ^ mask[i]!) << 8) | (v[5 + i]! ^ mask[i + 1]!);
      groups.push(g.toString(16));
    }
    return { family: 'IPv6', address: compressIPv6(groups), port };
  }
  return null;
}

function compressIPv6(groups: string[]): string {
  // longest run (>= 2) of zero groups becomes '::' (RFC 5952)
  let bestStart = -1, bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  if (bestLen < 2) return groups.join(':');
  return groups.slice(0, bestStart).join(':') + '::' + groups.slice(bestStart + bestLen).join(':');
}

/** Parse and validate a STUN message; never throws. */
export function parseStun(buf: Uint8Array): StunParseResult {
  if (buf.length < STUN_HEADER_SIZE) return { ok: false, reason: 'short' };
  if ((buf[0]! & 0xc0) !== 0) return { ok: false, reason: 'not_stun' };
  const dv = view(buf);
  const type = dv.getUint16(0);
  const len = dv.getUint16(2);
  if (dv.getUint32(4) !== STUN_MAGIC_COOKIE) return { ok: false, reason: 'no_cookie' };
  if (len % 4 !== 0 || STUN_HEADER_SIZE + len !== buf.length) return { ok: false, reason: 'bad_length' };
  const txid = buf.subarray(8, 20);
  const msg: StunMessage = { type, transactionId: txid, unknownRequired: [], hasFingerprint: false };
  let xorAddr: StunAddress | undefined;
  let plainAddr: StunAddress | undefined;
  let off = STUN_HEADER_SIZE;
  while (off < buf.length) {
    if (off + 4 > buf.length) return { ok: false, reason: 'truncated_attr' };
    const at = dv.getUint16(off);
    const al = dv.getUint16(off + 2);
    const vstart = off + 4;
    const vend = vstart + al;
    if (vend > buf.length) return { ok: false, reason: 'truncated_attr' };
    if (msg.hasFingerprint) return { ok: false, reason: 'attr_after_fingerprint' };
    const v = buf.subarray(vstart, vend);
    switch (at) {
      case ATTR_XOR_MAPPED_ADDRESS: {
        const a = parseAddress(v, true, txid);
        if (!a) return { ok: false, reason: 'bad_address' };
        xorAddr ??= a;
        break;
      }
      case ATTR_MAPPED_ADDRESS: {
        const a = parseAddress(v, false, txid);
        if (!a) return { ok: false, reason: 'bad_address' };
        plainAddr ??= a;
        break;
      }
      case ATTR_OTHER_ADDRESS:
        msg.otherAddress ??= parseAddress(v, false, txid) ?? undefined;
        break;
      case ATTR_ERROR_CODE: {
        if (al < 4) return { ok: false, reason: 'bad_error_code' };
        msg.errorCode = (v[2]! & 0x07) * 100 + v[3]!;
        msg.errorReason = Buffer.from(v.subarray(4)).toString('utf8');
        break;
      }
      case ATTR_FINGERPRINT: {
        if (al !== 4) return { ok: false, reason: 'bad_fingerprint' };
        const want = (crc32(buf, 0, off) ^ FINGERPRINT_XOR) >>> 0;
        if (dv.getUint32(vstart) !== want) return { ok: false, reason: 'bad_fingerprint' };
        msg.hasFingerprint = true;
        break;
      }
      default:
        if (at < 0x8000 && !KNOWN_REQUIRED.has(at)) msg.unknownRequired.push(at);
    }
    off = vstart + ((al + 3) & ~3);
  }
  if (off !== buf.length) return { ok: false, reason: 'bad_length' };
  msg.mappedAddress = xorAddr ?? plainAddr;
  return { ok: true, message: msg };
}

function ipv4Bytes(addr: string): Uint8Array | null {
  const parts = addr.split('.');
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return null;
    out[i] = Number(p);
  }
  return out;
}

function ipv6Bytes(addr: string): Uint8Array | null {
  let a = addr;
  const pct = a.indexOf('%');
  if (pct >= 0) a = a.slice(0, pct);
  // IPv4-mapped tail (::ffff:1.2.3.4)
  const lastColon = a.lastIndexOf(':');
  let tail: Uint8Array | null = null;
  if (a.slice(lastColon + 1).includes('.')) {
    tail = ipv4Bytes(a.slice(lastColon + 1));
    if (!tail) return null;
    a = a.slice(0, lastColon + 1) + '0:0';
  }
  const halves = a.split('::');
  if (halves.length > 2) return null;
  const head = halves[0] ? halves[0].split(':') : [];
  const rest = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const fill = 8 - head.length - rest.length;
  if (halves.length === 1 ? head.length !== 8 : fill < 1) return null;
  const groups = [...head, ...Array<string>(halves.length === 2 ? fill : 0).fill('0'), ...rest];
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    const g = groups[i]!;
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
    const n = parseInt(g, 16);
    out[2 * i] = n >> 8;
    out[2 * i + 1] = n & 0xff;
  }
  if (tail) out.set(tail, 12);
  return out;
}

class Writer {
  private parts: Uint8Array[] = [];
  private len = 0;
  attr(type: number, value: Uint8Array): void {
    const padded = (value.length + 3) & ~3;
    const a = new Uint8Array(4 + padded);
    a[0] = type >> 8; a[1] = type & 0xff; a[2] = value.length >> 8; a[3] = value.length & 0xff;
    a.set(value, 4);
    this.parts.push(a);
    this.len += a.length;
  }
  finish(type: number, txid: Uint8Array, fingerprint: boolean): Uint8Array {
    const total = STUN_HEADER_SIZE + this.len + (fingerprint ? 8 : 0);
    const out = new Uint8Array(total);
    const dv = view(out);
    dv.setUint16(0, type);
    dv.setUint16(2, total - STUN_HEADER_SIZE);
    dv.setUint32(4, STUN_MAGIC_COOKIE);
    out.set(txid, 8);
    let off = STUN_HEADER_SIZE;
    for (const p of this.parts) { out.set(p, off); off += p.length; }
    if (fingerprint) {
      dv.setUint16(off, ATTR_FINGERPRINT);
      dv.setUint16(off + 2, 4);
      dv.setUint32(off + 4, (crc32(out, 0, off) ^ FINGERPRINT_XOR) >>> 0);
    }
    return out;
  }
}

/** A fresh 96-bit transaction id from the CSPRNG. */
export function newTransactionId(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(12));
}

export function encodeBindingRequest(txid: Uint8Array, opts: { fingerprint?: boolean } = {}): Uint8Array {
  if (txid.length !== 12) throw new Error('STUN transaction id must be 12 bytes');
  return new Writer().finish(BINDING_REQUEST, txid, opts.fingerprint ?? true);
}

/** Encode an address attribute value (XOR'ed or plain). Throws on an unparsable address. */
export function encodeAddressValue(addr: StunAddress, xor: boolean, txid: Uint8Array): Uint8Array {
  const raw = addr.family === 'IPv4' ? ipv4Bytes(addr.address) : ipv6Bytes(addr.address);
  if (!raw) throw new Error(`not an ${addr.family} address: ${addr.address}`);
  const v = new Uint8Array(4 + raw.length);
  v[1] = addr.family === 'IPv4' ? 0x01 : 0x02;
  let port = addr.port;
  if (xor) port ^= STUN_MAGIC_COOKIE >>> 16;
  v[2] = port >> 8; v[3] = port & 0xff;
  const mask = new Uint8Array(16);
  if (xor) { mask.set([0x21, 0x12, 0xa4, 0x42], 0); mask.set(txid, 4); }
  for (let i = 0; i < raw.length; i++) v[4 + i] = raw[i]! ^ mask[i]!;
  return v;
}

/** Normalise Node's rinfo (an IPv4-mapped IPv6 source becomes plain IPv4). */
export function stunAddressOf(address: string, port: number): StunAddress {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (m) return { family: 'IPv4', address: m[1]!, port };
  return { family: address.includes(':') ? 'IPv6' : 'IPv4', address, port };
}

/** A Binding success: XOR-MAPPED-ADDRESS, OTHER-ADDRESS when given (of the mapped address's family only), FINGERPRINT. */
export function encodeBindingSuccess(txid: Uint8Array, mapped: StunAddress, other?: StunAddress): Uint8Array {
  const w = new Writer();
  w.attr(ATTR_XOR_MAPPED_ADDRESS, encodeAddressValue(mapped, true, txid));
  if (other && other.family === mapped.family) w.attr(ATTR_OTHER_ADDRESS, encodeAddressValue(other, false, txid));
  return w.finish(BINDING_SUCCESS, txid, true);
}

/**
 * The size of our Binding success to a source of this family: XOR-MAPPED-ADDRESS,
 * OTHER-ADDRESS when the server has another endpoint of that family, FINGERPRINT. It is the
 * most any answer of ours may be (the 420 answer is cut to fit): 40 bytes for IPv4 (52
 * with OTHER-ADDRESS), 52 for IPv6 (76). Every request is at least 20 bytes, so no answer
 * is more than 2.6 times (IPv4) or 3.8 times (IPv6) the request, and a source gets a
 * bounded number of answers per second (the relay's per-source STUN budget).
 */
export function bindingSuccessSize(family: StunAddress['family'], withOther = false): number {
  const address = 4 + (family === 'IPv4' ? 8 : 20);
  return STUN_HEADER_SIZE + address + (withOther ? address : 0) + 8;
}

/**
 * The 420 answer to a request with unknown comprehension-required attributes, bounded by
 * `maxBytes` (RFC 8489 §14.8: the reason phrase may be empty, FINGERPRINT is optional): as
 * many of the unknown types as fit are listed — for an IPv4 source 2 (10 when the success
 * would carry OTHER-ADDRESS), for IPv6 10 (22).
 */
export function encodeBoundedUnknownAttributes(txid: Uint8Array, unknown: number[], maxBytes: number): Uint8Array {
  // header 20 + ERROR-CODE 8 + UNKNOWN-ATTRIBUTES 4 + 2 per type, padded to 4
  const room = Math.floor((maxBytes - STUN_HEADER_SIZE - 8 - 4) / 4) * 2;
  const listed = unknown.slice(0, Math.max(1, room));
  const w = new Writer();
  w.attr(ATTR_ERROR_CODE, new Uint8Array([0, 0, 4, 20]));
  const u = new Uint8Array(listed.length * 2);
  listed.forEach((t, i) => { u[2 * i] = t >> 8; u[2 * i + 1] = t & 0xff; });
  w.attr(ATTR_UNKNOWN_ATTRIBUTES, u);
  return w.finish(BINDING_ERROR, txid, false);
}

export function encodeBindingError(txid: Uint8Array, code: number, reason: string, unknown: number[] = []): Uint8Array {
  const w = new Writer();
  const text = Buffer.from(reason, 'utf8');
  const v = new Uint8Array(4 + text.length);
  v[2] = Math.floor(code / 100) & 0x07;
  v[3] = code % 100;
  v.set(text, 4);
  w.attr(ATTR_ERROR_CODE, v);
  if (unknown.length > 0) {
    const u = new Uint8Array(unknown.length * 2);
    unknown.forEach((t, i) => { u[2 * i] = t >> 8; u[2 * i + 1] = t & 0xff; });
    w.attr(ATTR_UNKNOWN_ATTRIBUTES, u);
  }
  return w.finish(BINDING_ERROR, txid, true);
}

export type StunServerReply =
  | { kind: 'reply'; data: Uint8Array; status: 'success' | 'error' }
  | { kind: 'drop'; reason: string };

/**
 * The whole server side: given a datagram and its source, what to send back; `other` is the
 * server's other STUN endpoint (OTHER-ADDRESS, sent to sources of its family).
 * Indications and responses are dropped (we only answer Binding requests).
 */
export function answerBindingRequest(buf: Uint8Array, source: StunAddress, other?: StunAddress): StunServerReply {
  const p = parseStun(buf);
  if (!p.ok) return { kind: 'drop', reason: p.reason };
  const m = p.message;
  if (m.type !== BINDING_REQUEST) {
    return { kind: 'drop', reason: m.type === BINDING_INDICATION ? 'indication' : 'not_request' };
  }
  if (m.unknownRequired.length > 0) {
    // bounded: never larger than the success response this source would have had
    return { kind: 'reply', status: 'error', data: encodeBoundedUnknownAttributes(m.transactionId, m.unknownRequired, bindingSuccessSize(source.family, other?.family === source.family)) };
  }
  try {
    return { kind: 'reply', status: 'success', data: encodeBindingSuccess(m.transactionId, source, other) };
  } catch {
    return { kind: 'drop', reason: 'bad_source' };
  }
}
