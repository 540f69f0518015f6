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

/** Where packets are built: one scratch buffer, copied out at the exact size with headroom. */
export class PacketBuffers {
  private scratch: Uint8Array;
  constructor(
    limit: number,
    readonly headroom: number,
    readonly tailroom: number,
  ) {
    this.scratch = new Uint8Array(limit);
  }

  /** a buffer at least `limit` bytes long to build in */
  scratchFor(limit: number): Uint8Array {
    if (this.scratch.length < limit) this.scratch = new Uint8Array(limit);
    return this.scratch;
  }

  /** the built bytes in a buffer of their own, with the free room around them */
  take(built: Uint8Array, size: number): Uint8Array {
    const out = new Uint8Array(new ArrayBuffer(this.headroom + size + this.tailroom), this.headroom, size);
    out.set(built.subarray(0, size));
    return out;
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
  const w = new PacketWriter(buffers.scratchFor(limit), header, limit);
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
  return { bytes: buffers.take(w.buf, w.off), frames: w.frames, ackEliciting: w.ackEliciting };
}
