// Per-stream state: send buffer (unacked bytes kept by reference, no copy), lost and
// acknowledged byte ranges; the receive half (reassembly, FIN, the credit we grant).
import { RangeSet } from './ranges.js';
import { ReceiveWindow } from './flow-control.js';
import { Reassembler } from './reassembly.js';

/** initial credit both sides assume before any MAX_* frame (protocol constants) */
export const INITIAL_STREAM_CREDIT = 256 * 1024;
export const INITIAL_CONNECTION_CREDIT = 1024 * 1024;

export class SendSide {
  /** unacknowledged (or unsent) bytes, contiguous from `base` */
  chunks: Uint8Array[] = [];
  base = 0;
  written = 0;
  /** next offset never sent before */
  sent = 0;
  acked = new RangeSet();
  lost = new RangeSet();
  finRequested = false;
  finSent = false;
  finAcked = false;
  finLost = false;
  /** credit granted by the peer for this stream */
  maxData = INITIAL_STREAM_CREDIT;
  /** write() returned short: emit 'writable' when room frees up */
  blocked = false;
  resetCode: number | null = null;
  resetAcked = false;
  target: Uint8Array | null;

  constructor(target: Uint8Array | null) {
    this.target = target;
  }

  get buffered(): number {
    return this.written - this.base;
  }

  /** all bytes (and the FIN) acknowledged, or the reset acknowledged */
  get done(): boolean {
    if (this.resetCode !== null) return this.resetAcked;
    return this.finAcked && this.base === this.written;
  }

  /** the stream was reset: nothing more will be sent or re-sent */
  abandon(code: number): void {
    this.resetCode = code;
    this.chunks = [];
    this.lost = new RangeSet();
  }

  push(data: Uint8Array): void {
    this.chunks.push(data);
    this.written += data.length;
  }

  /** copies bytes [start, end) into dst at off */
  copy(start: number, end: number, dst: Uint8Array, off: number): void {
    let pos = this.base;
    for (const c of this.chunks) {
      const cEnd = pos + c.length;
      if (cEnd > start) {
        const s = Math.max(start, pos) - pos;
        const e = Math.min(end, cEnd) - pos;
        dst.set(c.subarray(s, e), off);
        off += e - s;
        if (cEnd >= end) return;
      }
      pos = cEnd;
    }
  }

  onAcked(start: number, end: number): void {
    // A late ACK for bytes below `base` (e.g. for the original of a spuriously retransmitted
    // range) must not re-enter `acked`: a stale range below base would sit in front of the
    // range that starts at base and block the advance below forever (the ≥ 2 MB stall).
    if (start < this.base) start = this.base;
    if (end <= start) return;
    // The common case, in order: the range starts at base and nothing above base was acked
    // before. base advances straight to `end`; the acked set stays empty (no tuple, no splice).
    if (start === this.base && this.acked.r.length === 0) {
      this.advanceBase(end);
      return;
    }
    this.acked.add(start, end);
    // bytes declared lost and then acknowledged after all (a spurious loss, or the ACK of a
    // copy that raced the declaration) must not be re-sent: base trims only what is below it
    if (this.lost.length > 0) this.lost.remove(start, end);
    const first = this.acked.r[0];
    if (first && first[0] <= this.base && first[1] > this.base) this.advanceBase(first[1]);
  }

  /** everything below `to` is acknowledged: its chunks go, and so do its ranges */
  private advanceBase(to: number): void {
    let drop = to - this.base;
    this.base = to;
    while (drop > 0 && this.chunks.length) {
      const c = this.chunks[0]!;
      if (c.length <= drop) {
        drop -= c.length;
        this.chunks.shift();
      } else {
        this.chunks[0] = c.subarray(drop);
        drop = 0;
      }
    }
    this.acked.trimBelow(this.base);
    this.lost.trimBelow(this.base);
  }

  onLost(start: number, end: number): void {
    // only what is not acknowledged yet needs resending
    let cur = Math.max(start, this.base);
    while (cur < end) {
      const gap = this.acked.firstGap(cur, end);
      if (!gap) break;
      this.lost.add(gap[0], gap[1]);
      cur = gap[1];
    }
  }
}

/** The receive half: reassembly (reassembly.ts), the FIN, and the credit we grant. */
export class RecvSide extends Reassembler {
  finalSize = -1;
  finDelivered = false;
  resetReceived = false;
  /** the credit we grant; `credit.received` is the highest offset seen */
  readonly credit: ReceiveWindow;

  constructor(maxWindow: number) {
    super();
    this.credit = new ReceiveWindow(INITIAL_STREAM_CREDIT, maxWindow);
  }

  get finReadable(): boolean {
    return this.finalSize >= 0 && this.contig === this.finalSize && this.readyBytes === 0;
  }
}

export class Stream {
  send: SendSide;
  recv: RecvSide;
  /** the peer's opening target arrived (peer-opened streams) */
  opened: boolean;
  /** 'open' event emitted */
  announced = false;

  constructor(
    readonly id: number,
    readonly local: boolean,
    target: Uint8Array | null,
    maxRecvWindow: number,
  ) {
    this.send = new SendSide(local ? target : null);
    this.recv = new RecvSide(maxRecvWindow);
    this.opened = local;
  }

  /** both directions finished */
  get done(): boolean {
    const recvDone = this.recv.resetReceived || this.recv.finDelivered;
    return recvDone && this.send.done;
  }
}
