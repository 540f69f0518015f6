// Transport packet and frame codec. Byte layouts (also in docs/protocol/transport.md):
//
// packet  = version:u8 (0x01) | srcEpoch:u32be | dstEpoch:u32be | pn:varint | frame*
//   srcEpoch: the sender's random non-zero connection epoch (changes when its agent restarts)
//   dstEpoch: the receiver's epoch as the sender knows it, 0 if not known yet
// varint  = QUIC variable-length integer (RFC 9000 §16), values < 2^53 here
// frames (type:u8 then fields):
//   0x00 PADDING        a run of zero bytes (to the end of the packet or the next frame)
//   0x01 PING
//   0x02 ACK            largest, ackDelayUs, rangeCount, firstRange, (gap, length)*rangeCount
//   0x03 RESET_STREAM   id, code, finalSize
//   0x04 MAX_DATA       max
//   0x05 MAX_STREAM_DATA id, max
//   0x06 CLOSE          code, reasonLen, reason bytes (UTF-8)
//   0x07 MAX_STREAMS    max (how many streams the peer may open in total, cumulative)
//   0x08..0x0B STREAM   bit0 = FIN, bit1 = OPEN (target present);
//                       id, offset, [targetLen:u8, target], length, data
// Every parser is length-checked and reports malformed input as a typed ParseError (it never
// throws). Peer-controlled counts are bounded here: ACK ranges (MAX_ACK_RANGES_PARSED), one
// ACK frame per packet, frames per packet (MAX_FRAMES_PER_PACKET), the CLOSE reason
// (MAX_CLOSE_REASON_BYTES), the stream target (MAX_TARGET), offsets + lengths < 2^53.

export const PACKET_VERSION = 0x01;
export const HEADER_FIXED = 9;

export const FT_PADDING = 0x00;
export const FT_PING = 0x01;
export const FT_ACK = 0x02;
export const FT_RESET = 0x03;
export const FT_MAX_DATA = 0x04;
export const FT_MAX_STREAM_DATA = 0x05;
export const FT_CLOSE = 0x06;
export const FT_MAX_STREAMS = 0x07;
export const FT_STREAM = 0x08;
export const STREAM_FIN = 0x01;
export const STREAM_OPEN = 0x02;
export const MAX_TARGET = 64;
/**
 * A parser accepts at most this many ACK ranges: the work per ACK is linear in them (a
 * sender never sends more than its MAX_ACK_RANGES = 32; 256 leaves room for a future one).
 */
export const MAX_ACK_RANGES_PARSED = 256;
/** CLOSE reasons are for logs: longer ones are cut when sent and refused when received */
export const MAX_CLOSE_REASON_BYTES = 256;
/**
 * Frames per packet: bounds the work one datagram can cause (a PADDING run is one frame).
 * The packet builder never writes more.
 */
export const MAX_FRAMES_PER_PACKET = 512;

/** why a packet failed to parse */
export type ParseError = 'bad_header' | 'bad_frame' | 'no_frames' | 'too_many_frames' | 'second_ack';

export type Frame =
  | { type: 'padding'; length: number }
  | { type: 'ping' }
  | { type: 'ack'; largest: number; ackDelayUs: number; ranges: Array<[number, number]> } // [lo, hi] inclusive, descending
  | { type: 'reset'; id: number; code: number; finalSize: number }
  | { type: 'maxData'; max: number }
  | { type: 'maxStreamData'; id: number; max: number }
  | { type: 'close'; code: number; reason: string }
  | { type: 'maxStreams'; max: number }
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
    case 'padding':
      return f.length;
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
    case 'maxStreams':
      return 1 + varintLen(f.max);
    case 'maxStreamData':
      return 1 + varintLen(f.id) + varintLen(f.max);
    case 'close': {
      const n = closeReasonBytes(f.reason).length;
      return 1 + varintLen(f.code) + varintLen(n) + n;
    }
    case 'stream':
      return streamFrameOverhead(f.id, f.offset, f.data.length, f.target) + f.data.length;
  }
}

export function streamFrameOverhead(id: number, offset: number, len: number, target?: Uint8Array): number {
  return 1 + varintLen(id) + varintLen(offset) + (target ? 1 + target.length : 0) + varintLen(len);
}

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: false });
/** the reason's UTF-8 bytes, cut to MAX_CLOSE_REASON_BYTES (a cut character decodes as U+FFFD) */
function closeReasonBytes(s: string): Uint8Array {
  const b = enc.encode(s);
  return b.length <= MAX_CLOSE_REASON_BYTES ? b : b.subarray(0, MAX_CLOSE_REASON_BYTES);
}

/** Writes one frame at off, returns the new offset. Caller guarantees room (frameSize). */
export function writeFrame(buf: Uint8Array, off: number, f: Frame): number {
  switch (f.type) {
    case 'padding':
      buf.fill(FT_PADDING, off, off + f.length);
      return off + f.length;
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
    case 'maxStreams':
      buf[off++] = FT_MAX_STREAMS;
      return writeVarint(buf, off, f.max);
    case 'maxStreamData':
      buf[off++] = FT_MAX_STREAM_DATA;
      off = writeVarint(buf, off, f.id);
      return writeVarint(buf, off, f.max);
    case 'close': {
      const r = closeReasonBytes(f.reason);
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
      case FT_PADDING: {
        let n = 1;
        while (r.remaining > 0 && r.buf[r.off] === FT_PADDING) {
          r.off++;
          n++;
        }
        f = { type: 'padding', length: n };
        break;
      }
      case FT_PING:
        f = { type: 'ping' };
        break;
      case FT_ACK: {
        const largest = r.varint();
        const ackDelayUs = r.varint();
        const count = r.varint();
        const firstLen = r.varint();
        if (r.bad || firstLen > largest || count > MAX_ACK_RANGES_PARSED) return null;
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
      case FT_MAX_STREAMS:
        f = { type: 'maxStreams', max: r.varint() };
        break;
      case FT_CLOSE: {
        const code = r.varint();
        const n = r.varint();
        if (n > MAX_CLOSE_REASON_BYTES) return null;
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

export interface ParsedPacket {
  header: PacketHeader;
  frames: Frame[];
}

/**
 * Parses a whole packet (header + every frame, so a malformed packet is refused whole before
 * anything acts on it). Never throws; a ParseError string when anything is malformed.
 */
export function parsePacket(buf: Uint8Array): ParsedPacket | ParseError {
  const r = new Reader(buf, 0);
  const header = parseHeader(r);
  if (!header) return 'bad_header';
  const frames: Frame[] = [];
  let acks = 0;
  while (r.remaining > 0) {
    if (frames.length >= MAX_FRAMES_PER_PACKET) return 'too_many_frames';
    const f = parseFrame(r);
    if (!f) return 'bad_frame';
    if (f.type === 'ack' && ++acks > 1) return 'second_ack';
    frames.push(f);
  }
  if (frames.length === 0) return 'no_frames';
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
