// Packet building: one datagram's header and frames, never beyond its size limit. The
// builder decides the order (ACK first, then control frames, then stream data, then a PING
// for a probe that carries nothing else); the stream map decides which frames.
import { frameSize, writeFrame, writeHeader, writeStreamHeader, FT_PING, type Frame, type PacketHeader } from './wire.js';
import { SF, type SentFrame } from './recovery.js';
import type { AckTracker } from './ack-tracker.js';
import type { StreamMap } from './stream-map.js';
import type { Stream } from './stream.js';

/** A packet being written: a buffer, a size limit and the frames that need tracking. */
export class PacketWriter {
  off: number;
  readonly frames: SentFrame[] = [];
  ackEliciting = false;

  constructor(
    readonly buf: Uint8Array,
    header: PacketHeader,
    readonly limit: number,
  ) {
    this.off = writeHeader(buf, header);
  }

  /** bytes left */
  get room(): number {
    return this.limit - this.off;
  }

  /** writes a non-STREAM frame if it fits; `sent` is what to track for it */
  writeFrame(f: Frame, sent: SentFrame | null): boolean {
    if (this.off + frameSize(f) > this.limit) return false;
    this.off = writeFrame(this.buf, this.off, f);
    if (sent) this.frames.push(sent);
    if (f.type !== 'ack') this.ackEliciting = true;
    return true;
  }

  /** writes stream bytes [start, end) of `s`; the caller checked the room */
  writeStream(s: Stream, start: number, end: number, fin: boolean, target: Uint8Array | undefined): void {
    let off = writeStreamHeader(this.buf, this.off, s.id, start, end - start, fin, target);
    s.send.copy(start, end, this.buf, off);
    off += end - start;
    this.off = off;
    this.frames.push({ k: SF.Stream, id: s.id, off: start, len: end - start, fin });
    this.ackEliciting = true;
  }

  writePing(): void {
    this.buf[this.off++] = FT_PING;
    this.frames.push({ k: SF.Ping });
    this.ackEliciting = true;
  }
}

/**
 * Slab size: packets are carved from slabs of this many bytes (or one packet's worth, if
 * larger), so a small packet costs no allocation of its own.
 */
export const SLAB_BYTES = 256 * 1024;

/**
 * Where packets are built: in place, in their final memory. Each packet is written at
 * `headroom` bytes into the free part of a slab and keeps headroom + size + tailroom bytes
 * of it; the slab is only ever written forward, so a packet handed out stays its owner's
 * (lower layers write their headers and the AEAD tag around it, the socket may hold it
 * until sent) and no byte is copied after the stream data went in. A slab is freed by the
 * garbage collector once none of its packets is referenced.
 */
export class PacketBuffers {
  private slab: Uint8Array = new Uint8Array(0);
  /** where the next packet's headroom starts in the slab */
  private free = 0;
  constructor(
    readonly headroom: number,
    readonly tailroom: number,
  ) {}

  /** room to build a packet of at most `limit` bytes; nothing is committed until finish() */
  begin(limit: number): Uint8Array {
    const need = this.headroom + limit + this.tailroom;
    if (this.free + need > this.slab.length) {
      // never zero-filled: every byte a lower layer sends is one it wrote; plain Uint8Array
      // views (not Buffers) are what the transport hands out
      const b = Buffer.allocUnsafeSlow(Math.max(SLAB_BYTES, need));
      this.slab = new Uint8Array(b.buffer, b.byteOffset, b.length);
      this.free = 0;
    }
    return this.slab.subarray(this.free + this.headroom, this.free + this.headroom + limit);
  }

  /** commits the packet begin() returned, `size` bytes long; returns it (a view) */
  finish(size: number): Uint8Array {
    const at = this.free + this.headroom;
    this.free = at + size + this.tailroom;
    return this.slab.subarray(at, at + size);
  }

  /** a packet encoded elsewhere, with the same free room around it */
  copy(bytes: Uint8Array): Uint8Array {
    this.begin(bytes.length).set(bytes);
    return this.finish(bytes.length);
  }
}

export interface BuiltPacket {
  bytes: Uint8Array;
  frames: SentFrame[];
  ackEliciting: boolean;
}

/**
 * Builds the next packet: an ACK when one is owed; with `allowEliciting` (the congestion
 * window and pacer allow it, or it is a probe) control frames and stream data; a probe
 * that found nothing to carry carries a PING. Null when the packet would be empty.
 */
export function buildPacket(
  buffers: PacketBuffers,
  header: PacketHeader,
  limit: number,
  now: number,
  acks: AckTracker,
  streams: StreamMap,
  allowEliciting: boolean,
  probe: boolean,
): BuiltPacket | null {
  const w = new PacketWriter(buffers.begin(limit), header, limit);
  let hasAck = false;
  if (acks.owed) {
    const ack: Frame = { type: 'ack', largest: acks.largest, ackDelayUs: acks.ackDelayUs(now), ranges: acks.ranges };
    if (w.writeFrame(ack, null)) {
      hasAck = true;
      acks.onAckSent();
    }
  }
  if (allowEliciting) {
    streams.writeControlFrames(w);
    streams.writeStreamFrames(w);
    if (!w.ackEliciting && probe) w.writePing();
  }
  if (!w.ackEliciting && !hasAck) return null;
  return { bytes: buffers.finish(w.off), frames: w.frames, ackEliciting: w.ackEliciting };
}
