// Transport packet and frame codec. Byte layouts (also in docs/protocol/transport.md):
//
// packet  = version:u8 (0x01) | srcEpoch:u32be | dstEpoch:u32be | pn:varint | frame*
//   srcEpoch: the sender's random non-zero connection epoch (changes when its agent restarts)
//   dstEpoch: the receiver's epoch as the sender knows it, 0 if not known yet
// varint  = QUIC variable-length integer (RFC 9000 §16), values < 2^53 here
// frames (type:u8 then fields):
//   0x01 PING
//   0x02 ACK            largest, ackDelayUs, rangeCount, firstRange, (gap, length)*rangeCount
//   0x03 RESET_STREAM   id, code, finalSize
//   0x04 MAX_DATA       max
//   0x05 MAX_STREAM_DATA id, max
//   0x06 CLOSE          code, reasonLen, reason bytes (UTF-8)
//   0x08..0x0B STREAM   bit0 = FIN, bit1 = OPEN (target present);
//                       id, offset, [targetLen:u8, target], length, data
// Every parser is length-checked and returns null on malformed input (never throws).

export const PACKET_VERSION = 0x01;
export const HEADER_FIXED = 9;

export const FT_PING = 0x01;
export const FT_ACK = 0x02;
export const FT_RESET = 0x03;
export const FT_MAX_DATA = 0x04;
export const FT_MAX_STREAM_DATA = 0x05;
export const FT_CLOSE = 0x06;
export const FT_STREAM = 0x08;
export const STREAM_FIN = 0x01;
export const STREAM_OPEN = 0x02;
export const MAX_TARGET = 64;

export type Frame =
  | { type: 'ping' }
  | { type: 'ack'; largest: number; ackDelayUs: number; ranges: Array<[number, number]> } // [lo, hi] inclusive, descending
  | { type: 'reset'; id: number; code: number; finalSize: number }
  | { type: 'maxData'; max: number }
  | { type: 'maxStreamData'; id: number; max: number }
  | { type: 'close'; code: number; reason: string }
  | { type: 'stream'; id: number; offset: number; fin: boolean; target?: Uint8Array; data: Uint8Array };

export interface PacketHeader {
  srcEpoch: number;
  dstEpoch: number;
  pn: number;
}

export function varintLen(v: number): number {
  if (v < 0x40) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x40000000) return 4;
  return 8;
}

/** Writes v at off, returns the new offset. Caller guarantees room. */
export function writeVarint(buf: Uint8Array, off: number, v: number): number {
  if (v < 0x40) {
    buf[off] = v;
    return off + 1;
  }
  if (v < 0x4000) {
    buf[off] = 0x40 | (v >>> 8);
    buf[off + 1] = v & 0xff;
    return off + 2;
  }
  if (v < 0x40000000) {
    buf[off] = 0x80 | (v >>> 24);
    buf[off + 1] = (v >>> 16) & 0xff;
    buf[off + 2] = (v >>> 8) & 0xff;
    buf[off + 3] = v & 0xff;
    return off + 4;
  }
  const hi = Math.floor(v / 0x100000000);
  const lo = v >>> 0;
  buf[off] = 0xc0 | ((hi >>> 24) & 0x3f);
  buf[off + 1] = (hi >>> 16) & 0xff;
  buf[off + 2] = (hi >>> 8) & 0xff;
  buf[off + 3] = hi & 0xff;
  buf[off + 4] = lo >>> 24;
  buf[off + 5] = (lo >>> 16) & 0xff;
  buf[off + 6] = (lo >>> 8) & 0xff;
  buf[off + 7] = lo & 0xff;
  return off + 8;
}

/** A small cursor reader; every read checks bounds and sets `bad` instead of throwing. */
export class Reader {
  bad = false;
  constructor(
    readonly buf: Uint8Array,
    public off: number,
  ) {}
  get remaining(): number {
    return this.buf.length - this.off;
  }
  u8(): number {
    if (this.off + 1 > this.buf.length) {
      this.bad = true;
      return 0;
    }
    return this.buf[this.off++]!;
  }
  u32(): number {
    if (this.off + 4 > this.buf.length) {
      this.bad = true;
      return 0;
    }
    const b = this.buf;
    const o = this.off;
    this.off += 4;
    return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
  }
  varint(): number {
    if (this.off >= this.buf.length) {
      this.bad = true;
      return 0;
    }
    const b = this.buf;
    const first = b[this.off]!;
    const len = 1 << (first >>> 6);
    if (this.off + len > b.length) {
      this.bad = true;
      return 0;
    }
    let v = first & 0x3f;
    for (let i = 1; i < len; i++) v = v * 256 + b[this.off + i]!;
    this.off += len;
    if (v > Number.MAX_SAFE_INTEGER) {
      this.bad = true;
      return 0;
    }
    return v;
  }
  bytes(n: number): Uint8Array {
    if (n < 0 || this.off + n > this.buf.length) {
      this.bad = true;
      return new Uint8Array(0);
    }
    const v = this.buf.subarray(this.off, this.off + n);
    this.off += n;
    return v;
  }
}

export function writeHeader(buf: Uint8Array, h: PacketHeader): number {
  buf[0] = PACKET_VERSION;
  writeU32(buf, 1, h.srcEpoch);
  writeU32(buf, 5, h.dstEpoch);
  return writeVarint(buf, HEADER_FIXED, h.pn);
}

function writeU32(buf: Uint8Array, off: number, v: number): void {
  buf[off] = v >>> 24;
  buf[off + 1] = (v >>> 16) & 0xff;
  buf[off + 2] = (v >>> 8) & 0xff;
  buf[off + 3] = v & 0xff;
}

export function frameSize(f: Frame): number {
  switch (f.type) {
    case 'ping':
      return 1;
    case 'ack': {
      let n = 1 + varintLen(f.largest) + varintLen(f.ackDelayUs) + varintLen(f.ranges.length - 1);
      const first = f.ranges[0]!;
      n += varintLen(first[1] - first[0]);
      for (let i = 1; i < f.ranges.length; i++) {
        const prev = f.ranges[i - 1]!;
        const r = f.ranges[i]!;
        n += varintLen(prev[0] - r[1] - 2) + varintLen(r[1] - r[0]);
      }
      return n;
    }
    case 'reset':
      return 1 + varintLen(f.id) + varintLen(f.code) + varintLen(f.finalSize);
    case 'maxData':
      return 1 + varintLen(f.max);
    case 'maxStreamData':
      return 1 + varintLen(f.id) + varintLen(f.max);
    case 'close':
      return 1 + varintLen(f.code) + varintLen(utf8(f.reason).length) + utf8(f.reason).length;
    case 'stream':
      return streamFrameOverhead(f.id, f.offset, f.data.length, f.target) + f.data.length;
  }
}

export function streamFrameOverhead(id: number, offset: number, len: number, target?: Uint8Array): number {
  return 1 + varintLen(id) + varintLen(offset) + (target ? 1 + target.length : 0) + varintLen(len);
}

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: false });
function utf8(s: string): Uint8Array {
  return enc.encode(s);
}

/** Writes one frame at off, returns the new offset. Caller guarantees room (frameSize). */
export function writeFrame(buf: Uint8Array, off: number, f: Frame): number {
  switch (f.type) {
    case 'ping':
      buf[off] = FT_PING;
      return off + 1;
    case 'ack': {
      buf[off++] = FT_ACK;
      off = writeVarint(buf, off, f.largest);
      off = writeVarint(buf, off, f.ackDelayUs);
      off = writeVarint(buf, off, f.ranges.length - 1);
      const first = f.ranges[0]!;
      off = writeVarint(buf, off, first[1] - first[0]);
      for (let i = 1; i < f.ranges.length; i++) {
        const prev = f.ranges[i - 1]!;
        const r = f.ranges[i]!;
        off = writeVarint(buf, off, prev[0] - r[1] - 2);
        off = writeVarint(buf, off, r[1] - r[0]);
      }
      return off;
    }
    case 'reset':
      buf[off++] = FT_RESET;
      off = writeVarint(buf, off, f.id);
      off = writeVarint(buf, off, f.code);
      return writeVarint(buf, off, f.finalSize);
    case 'maxData':
      buf[off++] = FT_MAX_DATA;
      return writeVarint(buf, off, f.max);
    case 'maxStreamData':
      buf[off++] = FT_MAX_STREAM_DATA;
      off = writeVarint(buf, off, f.id);
      return writeVarint(buf, off, f.max);
    case 'close': {
      const r = utf8(f.reason);
      buf[off++] = FT_CLOSE;
      off = writeVarint(buf, off, f.code);
      off = writeVarint(buf, off, r.length);
      buf.set(r, off);
      return off + r.length;
    }
    case 'stream':
      off = writeStreamHeader(buf, off, f.id, f.offset, f.data.length, f.fin, f.target);
      buf.set(f.data, off);
      return off + f.data.length;
  }
}

/**
 * Writes a STREAM frame's type and fields up to its data (`len` bytes, written by the caller
 * at the returned offset). Caller guarantees room (streamFrameOverhead + len).
 */
export function writeStreamHeader(
  buf: Uint8Array, off: number, id: number, offset: number, len: number, fin: boolean, target: Uint8Array | undefined,
): number {
  buf[off++] = FT_STREAM | (fin ? STREAM_FIN : 0) | (target ? STREAM_OPEN : 0);
  off = writeVarint(buf, off, id);
  off = writeVarint(buf, off, offset);
  if (target) {
    buf[off++] = target.length;
    buf.set(target, off);
    off += target.length;
  }
  return writeVarint(buf, off, len);
}

/** Parses a packet header; null when malformed. */
export function parseHeader(r: Reader): PacketHeader | null {
  if (r.u8() !== PACKET_VERSION) return null;
  const srcEpoch = r.u32();
  const dstEpoch = r.u32();
  const pn = r.varint();
  if (r.bad || srcEpoch === 0) return null;
  return { srcEpoch, dstEpoch, pn };
}

/** Parses the next frame; null when malformed (the whole packet is then dropped). */
export function parseFrame(r: Reader): Frame | null {
  const t = r.u8();
  if (r.bad) return null;
  let f: Frame | null = null;
  if ((t & 0xfc) === FT_STREAM) {
    const id = r.varint();
    const offset = r.varint();
    let target: Uint8Array | undefined;
    if (t & STREAM_OPEN) {
      const tl = r.u8();
      if (tl > MAX_TARGET) return null;
      target = r.bytes(tl);
    }
    const len = r.varint();
    const data = r.bytes(len);
    if (offset + len > Number.MAX_SAFE_INTEGER) return null;
    f = { type: 'stream', id, offset, fin: (t & STREAM_FIN) !== 0, data };
    if (target) f.target = target;
  } else {
    switch (t) {
      case FT_PING:
        f = { type: 'ping' };
        break;
      case FT_ACK: {
        const largest = r.varint();
        const ackDelayUs = r.varint();
        const count = r.varint();
        const firstLen = r.varint();
        if (r.bad || firstLen > largest || count > 256) return null;
        const ranges: Array<[number, number]> = [[largest - firstLen, largest]];
        let lo = largest - firstLen;
        for (let i = 0; i < count; i++) {
          const gap = r.varint();
          const len = r.varint();
          const hi = lo - gap - 2;
          if (r.bad || hi < 0 || len > hi) return null;
          ranges.push([hi - len, hi]);
          lo = hi - len;
        }
        f = { type: 'ack', largest, ackDelayUs, ranges };
        break;
      }
      case FT_RESET:
        f = { type: 'reset', id: r.varint(), code: r.varint(), finalSize: r.varint() };
        break;
      case FT_MAX_DATA:
        f = { type: 'maxData', max: r.varint() };
        break;
      case FT_MAX_STREAM_DATA:
        f = { type: 'maxStreamData', id: r.varint(), max: r.varint() };
        break;
      case FT_CLOSE: {
        const code = r.varint();
        const n = r.varint();
        if (n > 1024) return null;
        const reason = dec.decode(r.bytes(n));
        f = { type: 'close', code, reason };
        break;
      }
      default:
        return null;
    }
  }
  return r.bad ? null : f;
}

/** Parses a whole packet (header + frames). Never throws; null when anything is malformed. */
export function parsePacket(buf: Uint8Array): { header: PacketHeader; frames: Frame[] } | null {
  const r = new Reader(buf, 0);
  const header = parseHeader(r);
  if (!header) return null;
  const frames: Frame[] = [];
  while (r.remaining > 0) {
    const f = parseFrame(r);
    if (!f) return null;
    frames.push(f);
  }
  if (frames.length === 0) return null;
  return { header, frames };
}

/** Encodes a packet from a header and frames (tests and simple callers). */
export function encodePacket(h: PacketHeader, frames: Frame[]): Uint8Array {
  let n = HEADER_FIXED + varintLen(h.pn);
  for (const f of frames) n += frameSize(f);
  const buf = new Uint8Array(n);
  let off = writeHeader(buf, h);
  for (const f of frames) off = writeFrame(buf, off, f);
  return buf;
}
