// The streams of one connection: opening and accepting them (stream-id credit both ways),
// the application's read/write/finish/reset, stream and connection flow control, the
// reassembly budget, what acknowledged or lost stream frames mean, and which stream sends
// next (round robin).
import { INITIAL_CONNECTION_CREDIT, INITIAL_STREAM_CREDIT, Stream } from './stream.js';
import { FRAGMENT_COST } from './reassembly.js';
import { RangeSet } from './ranges.js';
import { ReceiveWindow, SendCredit } from './flow-control.js';
import { MAX_TARGET, streamFrameOverhead, type Frame } from './wire.js';
import { SF, type SentFrame } from './recovery.js';
import type { PacketWriter } from './packet-builder.js';
import { CLOSE_CODE, RESET_CODE, type TransportEvent } from './types.js';

/** a STREAM frame with fewer bytes of room than this is not started (not worth a frame) */
const MIN_STREAM_FRAME_ROOM = 64;
/**
 * Streams each side may open before any MAX_STREAMS frame (protocol constant); the receiver
 * raises it to `maxPeerStreams` (≥ this) with its first packet.
 */
export const INITIAL_MAX_STREAMS = 64;
/**
 * Out-of-order bytes buffered per stream (and per connection) are charged their length plus
 * FRAGMENT_COST and may reach this multiple of the current receive window: a correct peer's
 * out-of-order data lies within the window (1×); the rest absorbs duplicates and small
 * fragments. A packet that would exceed it is dropped unacknowledged (the peer re-sends).
 */
const REASSEMBLY_BUDGET_WINDOWS = 2;
/**
 * A fragment smaller than this fraction of its datagram is copied rather than kept as a
 * view, so a few bytes never pin a whole (possibly 64 KB) datagram in memory.
 */
const VIEW_MIN_FRACTION = 1 / 4;

export interface StreamMapOptions {
  side: 0 | 1;
  sendBufferBytes: number;
  maxStreamWindow: number;
  maxConnectionWindow: number;
  maxPeerStreams: number;
}

/** what the stream map needs to know about time for auto-tuning the credit it grants */
export interface FlowClock {
  /** when the last packet arrived (read() has no clock of its own) */
  readonly lastReceived: number;
  readonly srtt: number;
}

/** a protocol violation found while handling a frame: the connection closes with it */
export interface ProtocolViolation {
  code: number;
  reason: string;
}

type StreamFrame = Extract<Frame, { type: 'stream' }>;

export class StreamMap {
  private streams = new Map<number, Stream>();
  private nextLocalStream: number;
  /** the highest peer stream id seen, and the lower ones not seen yet (< the credit: bounded) */
  private peerMaxSeen = -1;
  private peerUnseen = new Set<number>();
  /** how many streams (by index) the peer may open in total: what we advertised */
  private peerStreamCredit = INITIAL_MAX_STREAMS;
  private peerStreamsClosed = 0;
  private streamCreditPending: boolean;
  /** how many streams we may open in total: the peer's MAX_STREAMS */
  private localStreamCredit = INITIAL_MAX_STREAMS;
  /** Σ over streams of the charged out-of-order bytes */
  private reassemblyCharged = 0;
  /** streams with something to send, round robin */
  private sendQueue: number[] = [];
  private inSendQueue = new Set<number>();
  private pendingResets = new Set<number>();
  private pendingCredit = new Set<number>();
  private connCreditPending = false;
  /** connection credit the peer granted us */
  private connSend = new SendCredit(INITIAL_CONNECTION_CREDIT);
  /** connection credit we grant */
  private connRecv: ReceiveWindow;
  streamBytesReceived = 0;
  packetsRetransmitted = 0;
  /** STREAM frames received that brought nothing new (bytes and FIN all had arrived before) */
  repeatedStreamFrames = 0;

  constructor(
    private readonly o: StreamMapOptions,
    private readonly clock: FlowClock,
    private readonly events: TransportEvent[],
  ) {
    this.nextLocalStream = o.side;
    this.connRecv = new ReceiveWindow(INITIAL_CONNECTION_CREDIT, o.maxConnectionWindow);
    this.streamCreditPending = this.streamCreditTarget() > this.peerStreamCredit;
  }

  /** out-of-order bytes buffered, as charged (length + FRAGMENT_COST per fragment) */
  get reassemblyBytes(): number {
    return this.reassemblyCharged;
  }

  get size(): number {
    return this.streams.size;
  }

  // ───────────────────────────── application API ─────────────────────────────

  open(target: Uint8Array): number {
    if (target.length > MAX_TARGET) throw new Error(`transport: stream target longer than ${MAX_TARGET} bytes`);
    const id = this.nextLocalStream;
    this.nextLocalStream += 2;
    const s = new Stream(id, true, target.slice(), this.o.maxStreamWindow);
    this.streams.set(id, s);
    this.queueSend(id); // the open goes out even before any data
    return id;
  }

  write(id: number, data: Uint8Array): number {
    const s = this.streams.get(id);
    if (!s || s.send.finRequested || s.send.resetCode !== null) return 0;
    const room = this.o.sendBufferBytes - s.send.buffered;
    const n = Math.max(0, Math.min(room, data.length));
    if (n < data.length) s.send.blocked = true;
    if (n === 0) return 0;
    s.send.push(n === data.length ? data : data.subarray(0, n));
    this.queueSend(id);
    return n;
  }

  finish(id: number): void {
    const s = this.streams.get(id);
    if (!s || s.send.finRequested || s.send.resetCode !== null) return;
    s.send.finRequested = true;
    this.queueSend(id);
  }

  reset(id: number, code: number): void {
    const s = this.streams.get(id);
    if (!s || s.send.resetCode !== null) return;
    s.send.abandon(code);
    s.recv.resetReceived = true; // we no longer want its bytes either
    this.discardReceived(s);
    // a stream still waiting for stream credit never reached the peer: nothing to tell it
    if (s.local && !this.mayOpen(id)) s.send.resetAcked = true;
    else this.pendingResets.add(id);
    this.maybeForget(s);
  }

  /** our stream `id` is within the peer's stream credit */
  private mayOpen(id: number): boolean {
    return Math.floor(id / 2) < this.localStreamCredit;
  }

  read(id: number): Uint8Array | null {
    const s = this.streams.get(id);
    if (!s) return null;
    const r = s.recv;
    const chunk = r.shift();
    if (!chunk) return null;
    r.credit.consume(chunk.length);
    this.connRecv.consume(chunk.length);
    this.streamBytesReceived += chunk.length;
    this.updateCredit(s);
    if (r.finReadable && !r.finDelivered) {
      r.finDelivered = true;
      this.events.push({ type: 'fin', id });
      this.maybeForget(s);
    }
    return chunk;
  }

  readable(id: number): number {
    return this.streams.get(id)?.recv.readyBytes ?? 0;
  }

  writableBytes(id: number): number {
    const s = this.streams.get(id);
    if (!s || s.send.finRequested || s.send.resetCode !== null) return 0;
    return Math.max(0, this.o.sendBufferBytes - s.send.buffered);
  }

  has(id: number): boolean {
    return this.streams.has(id);
  }

  // ───────────────────────────── frames received ─────────────────────────────

  onMaxData(max: number): void {
    if (this.connSend.raise(max)) for (const id of this.streams.keys()) this.queueSend(id);
  }

  onMaxStreamData(id: number, max: number): void {
    const s = this.streams.get(id);
    if (s && max > s.send.maxData) {
      s.send.maxData = max;
      this.queueSend(id);
    }
  }

  onMaxStreams(max: number): void {
    if (max <= this.localStreamCredit) return;
    this.localStreamCredit = max;
    for (const [id, s] of this.streams) if (s.local) this.queueSend(id);
  }

  onReset(id: number, code: number, finalSize: number): ProtocolViolation | null {
    const s = this.accept(id, null);
    if (!s || 'reason' in s) return s;
    const r = s.recv;
    if (r.resetReceived) return null;
    // the final size is bounded like data: within the credit, never below what arrived
    if (finalSize > r.credit.advertised) return { code: CLOSE_CODE.FLOW_CONTROL, reason: `stream ${id} reset beyond its credit` };
    if ((r.finalSize >= 0 && finalSize !== r.finalSize) || finalSize < r.credit.received) {
      return { code: CLOSE_CODE.PROTOCOL, reason: `stream ${id} final size changed` };
    }
    const v = this.chargeConnection(r.credit.received, finalSize);
    if (v) return v;
    r.credit.receiveTo(finalSize);
    r.resetReceived = true;
    this.discardReceived(s);
    if (s.send.resetCode === null) {
      s.send.abandon(code);
      s.send.resetAcked = true; // nothing to tell the peer: it aborted the stream itself
    }
    if (s.local || s.announced) this.events.push({ type: 'reset', id: s.id, code });
    this.maybeForget(s);
    return null;
  }

  /** connection credit for a stream's highest offset moving from `from` to `to` */
  private chargeConnection(from: number, to: number): ProtocolViolation | null {
    if (to <= from) return null;
    if (this.connRecv.receiveTo(this.connRecv.received + to - from)) return null;
    return { code: CLOSE_CODE.FLOW_CONTROL, reason: 'connection credit exceeded' };
  }

  private discardReceived(s: Stream): void {
    this.reassemblyCharged -= s.recv.charged;
    s.recv.discard();
  }

  /**
   * Would buffering the out-of-order data of these frames stay within the reassembly
   * budgets (per stream and per connection)? Checked before a packet is acted on: one that
   * would not fit is dropped unacknowledged, so the peer re-sends it later.
   */
  admits(frames: Frame[]): boolean {
    let total = 0;
    for (const f of frames) {
      if (f.type !== 'stream') continue;
      const s = this.streams.get(f.id);
      const r = s?.recv;
      const charge = r ? r.chargeFor(f.offset, f.data.length) : f.offset > 0 && f.data.length > 0 ? f.data.length + FRAGMENT_COST : 0;
      if (charge === 0) continue;
      const window = r ? r.credit.window : INITIAL_STREAM_CREDIT;
      if ((r?.charged ?? 0) + charge > REASSEMBLY_BUDGET_WINDOWS * window) return false;
      total += charge;
    }
    return total === 0 || this.reassemblyCharged + total <= REASSEMBLY_BUDGET_WINDOWS * this.connRecv.window;
  }

  /** `datagramLength`: the size of the packet the frame came in (views vs copies) */
  onStreamFrame(f: StreamFrame, datagramLength: number): ProtocolViolation | null {
    const s = this.accept(f.id, f.target ?? null);
    if (!s || 'reason' in s) {
      if (!s) this.repeatedStreamFrames++; // a stream finished earlier
      return s;
    }
    const r = s.recv;
    if (r.resetReceived) return null;
    // every byte in order already, the FIN (if any) known, the open (if any) seen
    const repeated = f.offset + f.data.length <= r.contig && (!f.fin || r.finalSize >= 0) && (s.local || s.announced || !f.target);
    if (repeated) this.repeatedStreamFrames++;
    if (!s.opened && f.target) s.opened = true;
    if (!s.local && s.opened && !s.announced) {
      s.announced = true;
      this.events.push({ type: 'open', id: s.id, target: f.target ? f.target.slice() : new Uint8Array(0) });
    }
    const end = f.offset + f.data.length;
    if (end > r.credit.advertised) return { code: CLOSE_CODE.FLOW_CONTROL, reason: `stream ${s.id} exceeded its credit` };
    const highest = r.credit.received;
    if (f.fin) {
      if ((r.finalSize >= 0 && r.finalSize !== end) || end < highest) {
        return { code: CLOSE_CODE.PROTOCOL, reason: `stream ${s.id} final size changed` };
      }
      r.finalSize = end;
    } else if (r.finalSize >= 0 && end > r.finalSize) {
      return { code: CLOSE_CODE.PROTOCOL, reason: `stream ${s.id} data beyond its FIN` };
    }
    const v = this.chargeConnection(highest, end);
    if (v) return v;
    r.credit.receiveTo(end);
    const hadReady = r.readyBytes > 0;
    // the datagram is ours (types.ts): keep views of it, but copy small pieces of big ones
    const data = f.data.length >= datagramLength * VIEW_MIN_FRACTION ? f.data : f.data.slice();
    const chargedBefore = r.charged;
    const grew = r.insert(f.offset, data);
    this.reassemblyCharged += r.charged - chargedBefore;
    // a peer stream's data before its open is held until the target arrives ('announced'
    // means something else on our own streams: they are always readable)
    if (!s.local && !s.announced) return null;
    if (grew && !hadReady) this.events.push({ type: 'readable', id: s.id });
    if (r.finReadable && !r.finDelivered) {
      r.finDelivered = true;
      this.events.push({ type: 'fin', id: s.id });
      this.maybeForget(s);
    }
    return null;
  }

  /**
   * Finds or (for a peer-opened id never seen) creates the stream; null for ids of streams
   * already finished. A peer id beyond the stream credit we granted, or one of ours we never
   * opened, is a protocol error: the ids seen are tracked only within the credit, so no
   * id, however large, costs more than the credit's worth of bookkeeping.
   */
  private accept(id: number, target: Uint8Array | null): Stream | ProtocolViolation | null {
    const s = this.streams.get(id);
    if (s) return s;
    if (id % 2 === this.o.side) {
      if (id < this.nextLocalStream) return null; // ours, already forgotten
      return { code: CLOSE_CODE.PROTOCOL, reason: `stream ${id} was never opened` };
    }
    if (Math.floor(id / 2) >= this.peerStreamCredit) {
      return { code: CLOSE_CODE.PROTOCOL, reason: `stream ${id} beyond the stream limit ${this.peerStreamCredit}` };
    }
    if (id <= this.peerMaxSeen && !this.peerUnseen.has(id)) return null; // finished earlier
    this.markSeen(id);
    const ns = new Stream(id, false, null, this.o.maxStreamWindow);
    if (target) ns.opened = true;
    this.streams.set(id, ns);
    return ns;
  }

  /** the stream credit to advertise: every stream the peer closed frees one */
  private streamCreditTarget(): number {
    return this.peerStreamsClosed + Math.max(this.o.maxPeerStreams, INITIAL_MAX_STREAMS);
  }

  /** ids below peerMaxSeen not seen yet are remembered (at most the credit's worth) */
  private markSeen(id: number): void {
    if (id > this.peerMaxSeen) {
      const first = this.peerMaxSeen < 0 ? 1 - this.o.side : this.peerMaxSeen + 2;
      for (let k = first; k < id; k += 2) this.peerUnseen.add(k);
      this.peerMaxSeen = id;
    } else this.peerUnseen.delete(id);
  }

  private maybeForget(s: Stream): void {
    if (!s.done) return;
    this.streams.delete(s.id);
    this.reassemblyCharged -= s.recv.charged;
    if (!s.local) {
      this.peerStreamsClosed++;
      // re-advertise in batches, or at once when the peer has used all of its credit
      const target = this.streamCreditTarget();
      const peerNext = Math.floor(this.peerMaxSeen / 2) + 1;
      if (target - this.peerStreamCredit >= Math.max(1, this.o.maxPeerStreams / 8) || peerNext >= this.peerStreamCredit) {
        this.streamCreditPending = true;
      }
    }
    this.pendingCredit.delete(s.id);
    if (s.local || s.announced) this.events.push({ type: 'closed', id: s.id });
  }

  /** re-advertises stream and connection credit when half of the window is used */
  private updateCredit(s: Stream): void {
    const now = this.clock.lastReceived;
    const srtt = this.clock.srtt;
    if (s.recv.finalSize < 0 && s.recv.credit.update(now, srtt)) this.pendingCredit.add(s.id);
    if (this.connRecv.update(now, srtt)) this.connCreditPending = true;
  }

  // ───────────────────────────── our frames acknowledged / lost ─────────────────────────────

  onFrameAcked(fr: SentFrame): void {
    switch (fr.k) {
      case SF.Stream: {
        const s = this.streams.get(fr.id);
        if (!s) return;
        const snd = s.send;
        if (snd.resetCode !== null) return;
        snd.onAcked(fr.off, fr.off + fr.len);
        if (fr.fin) {
          snd.finAcked = true;
          // a FIN marked lost (a PTO probe, or a loss the ACK now shows spurious) needs no
          // re-send any more: left set, streamWants() would stay true with nothing to
          // write, and the pacing deadline would sit in the past (a busy loop)
          snd.finLost = false;
        }
        if (snd.blocked && snd.buffered <= this.o.sendBufferBytes / 2) {
          snd.blocked = false;
          this.events.push({ type: 'writable', id: s.id });
        }
        this.maybeForget(s);
        return;
      }
      case SF.Reset: {
        const s = this.streams.get(fr.id);
        if (s && s.send.resetCode !== null) {
          s.send.resetAcked = true;
          this.maybeForget(s);
        }
        return;
      }
      default:
        return;
    }
  }

  /** puts a lost (or PTO-probed) frame back on the send queues */
  onFrameLost(fr: SentFrame): void {
    switch (fr.k) {
      case SF.Stream: {
        const s = this.streams.get(fr.id);
        if (!s || s.send.resetCode !== null) return;
        s.send.onLost(fr.off, fr.off + fr.len);
        if (fr.fin && !s.send.finAcked) s.send.finLost = true;
        // a lost bare open (no bytes yet) is sent again
        if (fr.len === 0 && fr.off === 0 && !fr.fin && s.local && s.send.sent === 0) s.announced = false;
        this.packetsRetransmitted++;
        this.queueSend(fr.id);
        return;
      }
      case SF.Reset: {
        const s = this.streams.get(fr.id);
        if (s && !s.send.resetAcked) this.pendingResets.add(fr.id);
        return;
      }
      case SF.MaxData:
        this.connCreditPending = true;
        return;
      case SF.MaxStreams:
        this.streamCreditPending = true;
        return;
      case SF.MaxStreamData:
        if (this.streams.has(fr.id)) this.pendingCredit.add(fr.id);
        return;
      case SF.Ping:
        return;
    }
  }

  // ───────────────────────────── sending ─────────────────────────────

  private queueSend(id: number): void {
    if (!this.inSendQueue.has(id)) {
      this.inSendQueue.add(id);
      this.sendQueue.push(id);
    }
  }

  /** drops streams that have nothing to send (e.g. blocked on credit) from the queue */
  prune(): void {
    const keep: number[] = [];
    for (const id of this.sendQueue) {
      const s = this.streams.get(id);
      if (s && this.streamWants(s)) keep.push(id);
      else this.inSendQueue.delete(id);
    }
    this.sendQueue = keep;
  }

  /** something may be waiting to be sent (the queue may hold streams blocked on credit) */
  hasSendable(): boolean {
    return (
      this.sendQueue.length > 0 ||
      this.pendingResets.size > 0 ||
      this.pendingCredit.size > 0 ||
      this.connCreditPending ||
      this.streamCreditPending
    );
  }

  /** what a stream could send now: lost ranges first, then new bytes within credit */
  private streamWants(s: Stream): boolean {
    const snd = s.send;
    if (snd.resetCode !== null) return false;
    if (s.local && !this.mayOpen(s.id)) return false; // waits for MAX_STREAMS
    if (snd.lost.length > 0 || snd.finLost) return true;
    if (s.local && !s.announced && snd.written === 0 && !snd.finRequested) return true; // a bare open
    const newAvail = Math.min(snd.written, snd.maxData) - snd.sent;
    if (newAvail > 0 && this.connSend.available > 0) return true;
    if (snd.finRequested && !snd.finSent && snd.sent === snd.written) return true;
    return false;
  }

  /** RESET_STREAM, MAX_STREAMS, MAX_DATA and MAX_STREAM_DATA frames, as many as fit */
  writeControlFrames(w: PacketWriter): void {
    for (const id of this.pendingResets) {
      const s = this.streams.get(id);
      // the final size is what we sent: the peer accounts its credit by it
      if (s && !w.writeFrame({ type: 'reset', id, code: s.send.resetCode ?? 0, finalSize: s.send.sent }, { k: SF.Reset, id })) break;
      this.pendingResets.delete(id);
    }
    if (this.streamCreditPending) {
      const max = Math.max(this.peerStreamCredit, this.streamCreditTarget());
      if (w.writeFrame({ type: 'maxStreams', max }, { k: SF.MaxStreams })) {
        this.peerStreamCredit = max;
        this.streamCreditPending = false;
      }
    }
    if (this.connCreditPending && w.writeFrame({ type: 'maxData', max: this.connRecv.advertised }, { k: SF.MaxData })) {
      this.connCreditPending = false;
    }
    for (const id of this.pendingCredit) {
      const s = this.streams.get(id);
      if (s && !w.writeFrame({ type: 'maxStreamData', id, max: s.recv.credit.advertised }, { k: SF.MaxStreamData, id })) break;
      this.pendingCredit.delete(id);
    }
  }

  /** STREAM frames, round robin over the streams that want to send, as many as fit */
  writeStreamFrames(w: PacketWriter): void {
    let rounds = this.sendQueue.length;
    while (rounds-- > 0 && w.room > 16) {
      const id = this.sendQueue[0]!;
      const s = this.streams.get(id);
      this.sendQueue.shift();
      if (!s || !this.streamWants(s)) {
        this.inSendQueue.delete(id);
        continue;
      }
      this.writeOneStream(s, w);
      // rotate: the stream goes to the back if it still wants to send
      if (this.streamWants(s)) this.sendQueue.push(id);
      else this.inSendQueue.delete(id);
    }
  }

  /** writes as many STREAM frames of one stream as fit */
  private writeOneStream(s: Stream, w: PacketWriter): void {
    const snd = s.send;
    // 1. lost ranges
    while (snd.lost.length > 0) {
      const [start, end0] = snd.lost.r[0]!;
      const target = start === 0 ? (snd.target ?? undefined) : undefined;
      const room = w.room - streamFrameOverhead(s.id, start, end0 - start, target);
      if (room <= 0) return;
      const end = Math.min(end0, start + room);
      const fin = snd.finRequested && end === snd.written && (snd.finLost || !snd.finSent);
      w.writeStream(s, start, end, fin, target);
      snd.lost.remove(start, end);
      if (fin) snd.finLost = false;
    }
    // a lost FIN with no bytes left to resend
    if (snd.finLost && !snd.finAcked) {
      const target = snd.written === 0 ? (snd.target ?? undefined) : undefined;
      if (w.room < streamFrameOverhead(s.id, snd.written, 0, target)) return;
      w.writeStream(s, snd.written, snd.written, true, target);
      snd.finLost = false;
    }
    // 2. new bytes within stream and connection credit
    for (;;) {
      const start = snd.sent;
      const target = start === 0 ? (snd.target ?? undefined) : undefined;
      const credit = Math.min(snd.maxData - start, this.connSend.available);
      const avail = Math.min(snd.written - start, Math.max(0, credit));
      const bareOpen = start === 0 && snd.written === 0 && s.local && !snd.finSent && !s.announced && !snd.finRequested;
      const finOnly = avail === 0 && snd.finRequested && !snd.finSent && start === snd.written;
      if (avail <= 0 && !bareOpen && !finOnly) return;
      const room = w.room - streamFrameOverhead(s.id, start, Math.max(avail, 1), target);
      if (room <= 0 || (room < MIN_STREAM_FRAME_ROOM && avail > room)) return;
      const len = Math.min(avail, room);
      const end = start + len;
      const fin = snd.finRequested && end === snd.written;
      w.writeStream(s, start, end, fin, target);
      snd.sent = end;
      this.connSend.used += len;
      if (fin) snd.finSent = true;
      if (bareOpen) s.announced = true; // marks "open sent" for local streams
      if (len === 0) return;
    }
  }

  // ───────────────────────────── whole-connection events ─────────────────────────────

  /** the connection died: every stream the application knows is reset */
  closeAll(): void {
    for (const s of this.streams.values()) {
      if (s.local || s.announced) this.events.push({ type: 'reset', id: s.id, code: RESET_CODE.CONNECTION_CLOSED });
    }
    this.streams.clear();
    this.reassemblyCharged = 0;
  }

  /**
   * The peer restarted. Streams we opened that the old incarnation never acknowledged or
   * answered may be carried over: nothing of them reached a live peer application, so
   * re-sending them from offset 0 to the new incarnation is indistinguishable from opening
   * them now. This closes the race of a local connection accepted just as the peer agent
   * restarted. Every other stream is reset; all flow-control state restarts.
   */
  peerRestarted(): void {
    const carried: Stream[] = [];
    for (const s of this.streams.values()) {
      const snd = s.send;
      const untouched = s.local && snd.base === 0 && snd.acked.length === 0 && !snd.finAcked && snd.resetCode === null
        && s.recv.credit.received === 0 && !s.recv.resetReceived && s.recv.finalSize < 0;
      if (untouched) carried.push(s);
      else if (s.local || s.announced) this.events.push({ type: 'reset', id: s.id, code: RESET_CODE.PEER_RESTART });
    }
    this.streams.clear();
    this.sendQueue = [];
    this.inSendQueue.clear();
    this.pendingResets.clear();
    this.pendingCredit.clear();
    this.peerMaxSeen = -1;
    this.peerUnseen.clear();
    this.peerStreamCredit = INITIAL_MAX_STREAMS;
    this.peerStreamsClosed = 0;
    this.streamCreditPending = this.streamCreditTarget() > this.peerStreamCredit;
    this.localStreamCredit = INITIAL_MAX_STREAMS;
    this.reassemblyCharged = 0;
    this.connSend = new SendCredit(INITIAL_CONNECTION_CREDIT);
    this.connRecv = new ReceiveWindow(INITIAL_CONNECTION_CREDIT, this.o.maxConnectionWindow);
    this.connCreditPending = false;
    for (const st of carried) {
      const snd = st.send;
      snd.sent = 0;
      snd.acked = new RangeSet();
      snd.lost = new RangeSet();
      snd.finSent = false;
      snd.finLost = false;
      snd.maxData = INITIAL_STREAM_CREDIT;
      st.announced = false; // on our own streams: "bare open sent" — it must go out again
      this.streams.set(st.id, st);
      this.queueSend(st.id);
    }
  }

  /** credit never exceeded either way; acknowledged/lost ranges above each stream's base */
  checkInvariants(): string | null {
    let charged = 0;
    for (const s of this.streams.values()) charged += s.recv.charged;
    if (charged !== this.reassemblyCharged) return `reassembly charged ${this.reassemblyCharged} ≠ tracked ${charged}`;
    if (this.peerUnseen.size > this.peerStreamCredit) return `${this.peerUnseen.size} unseen peer ids > credit ${this.peerStreamCredit}`;
    if (this.connSend.used > this.connSend.limit) return `connection sent ${this.connSend.used} > credit ${this.connSend.limit}`;
    if (this.connRecv.received > this.connRecv.advertised) return `connection received ${this.connRecv.received} > credit ${this.connRecv.advertised}`;
    for (const s of this.streams.values()) {
      const snd = s.send;
      if (snd.sent > snd.maxData) return `stream ${s.id} sent ${snd.sent} > credit ${snd.maxData}`;
      if (s.recv.credit.received > s.recv.credit.advertised) return `stream ${s.id} received ${s.recv.credit.received} > credit ${s.recv.credit.advertised}`;
      if (snd.resetCode !== null) continue;
      const a0 = snd.acked.r[0];
      if (a0 && a0[0] <= snd.base) return `stream ${s.id} acked range [${a0[0]},${a0[1]}) not above base ${snd.base}`;
      const l0 = snd.lost.r[0];
      if (l0 && l0[0] < snd.base) return `stream ${s.id} lost range below base ${snd.base}`;
      if (snd.base > snd.sent || snd.sent > snd.written) return `stream ${s.id} base/sent/written out of order`;
      if (snd.finLost && snd.finAcked) return `stream ${s.id} FIN both acknowledged and waiting to be re-sent`;
    }
    return null;
  }
}
