// The sans-I/O transport connection: one per peer pair. Datagrams in (receive), datagrams
// out (poll), an explicit clock (`now`, ms) and nextDeadline(); poll(now) also runs every
// timer that is due (loss detection, PTO, ACK delay, keepalive, idle), so the owner only
// ever calls receive(), poll() and reads nextDeadline().
import { NewReno, RttEstimator, GRANULARITY_MS } from './congestion.js';
import { INITIAL_CONNECTION_CREDIT, INITIAL_STREAM_CREDIT, Stream } from './stream.js';
import { RangeSet } from './ranges.js';
import {
  FT_ACK,
  FT_STREAM,
  HEADER_FIXED,
  MAX_TARGET,
  Reader,
  STREAM_FIN,
  STREAM_OPEN,
  frameSize,
  parseFrame,
  parseHeader,
  streamFrameOverhead,
  varintLen,
  writeFrame,
  writeHeader,
  writeVarint,
  type Frame,
} from './wire.js';
import { CLOSE_CODE, RESET_CODE, type ConnectionOptions, type ConnectionStats, type TransportEvent } from './types.js';

/** advertised (protocol constant) maximum ACK delay: the receiver acks within this */
export const MAX_ACK_DELAY_MS = 2;
const PACKET_THRESHOLD = 3;
const TIME_THRESHOLD = 9 / 8;
const PERSISTENT_CONGESTION_THRESHOLD = 3;
const MAX_ACK_RANGES = 32;
/** longest PTO period after backoff (unless 2 × the base PTO is longer) */
const MAX_PTO_PERIOD_MS = 2000;
/** ack at once after this many ack-eliciting packets */
const ACK_EVERY = 2;

const enum SF {
  Stream,
  Reset,
  MaxData,
  MaxStreamData,
  Ping,
}
type SentFrame =
  | { k: SF.Stream; id: number; off: number; len: number; fin: boolean }
  | { k: SF.Reset; id: number }
  | { k: SF.MaxData }
  | { k: SF.MaxStreamData; id: number }
  | { k: SF.Ping };

interface SentPacket {
  pn: number;
  time: number;
  size: number;
  ackEliciting: boolean;
  inFlight: boolean;
  frames: SentFrame[];
  /**
   * Sent on a path we have since left: no longer counted in flight, still acknowledgeable,
   * declared lost only by this deadline (never by packet threshold: packets on the new,
   * faster path overtake it legitimately), never a congestion or RTT signal.
   */
  oldPathLostAt?: number;
}

export class Connection {
  readonly side: 0 | 1;
  readonly epoch: number;
  readonly maxPacketSize: number;
  private readonly idleTimeoutMs: number;
  private readonly keepAliveMs: number;
  private readonly sendBufferBytes: number;
  private readonly maxStreamWindow: number;
  private readonly maxConnWindow: number;
  private readonly maxPeerStreams: number;

  peerEpoch = 0;
  private retiredPeerEpochs = new Set<number>();
  closed = false;
  private closeFrame: Frame | null = null;

  readonly rtt = new RttEstimator();
  readonly cc: NewReno;

  private streams = new Map<number, Stream>();
  private nextLocalStream: number;
  private peerMaxSeen = -1;
  private peerUnseen = new Set<number>();
  private peerOpenCount = 0;
  /** streams with something to send, round robin */
  private sendQueue: number[] = [];
  private inSendQueue = new Set<number>();
  private pendingResets = new Set<number>();
  private pendingCredit = new Set<number>();
  private events: TransportEvent[] = [];

  // packet number space (send)
  private nextPn = 0;
  private sent: Array<SentPacket | undefined> = [];
  private sentBase = 0; // pn of sent[0]
  private largestAcked = -1;
  private lossTime = Infinity;
  private ptoCount = 0;
  private lastAckElicitingSent = -Infinity;
  private probesPending = 0;
  /** when we last answered a packet addressed to an earlier incarnation of us */
  private lastStaleAnswer = -Infinity;
  private ackElicitingInFlight = 0;

  // receive side of the packet number space
  private recvRanges: Array<[number, number]> = []; // descending, inclusive
  private largestRecvTime = 0;
  private ackPendingCount = 0;
  private ackDeadline = Infinity;
  private ackNow = false;
  private lastReceived: number;
  private lastSent = -Infinity;

  // connection flow control
  private connSent = 0;
  private connMaxData = INITIAL_CONNECTION_CREDIT;
  private connRecvHighest = 0;
  private connConsumed = 0;
  private connWindow = INITIAL_CONNECTION_CREDIT;
  private connAdvertised = INITIAL_CONNECTION_CREDIT;
  private connLastCredit = -Infinity;
  private connCreditPending = false;

  private st = {
    packetsSent: 0,
    packetsReceived: 0,
    packetsLost: 0,
    packetsRetransmitted: 0,
    bytesSent: 0,
    bytesReceived: 0,
    streamBytesReceived: 0,
    malformed: 0,
    cwndViolations: 0,
  };

  constructor(opts: ConnectionOptions, now = 0) {
    const random = opts.random ?? Math.random;
    this.side = opts.side;
    this.epoch = opts.epoch ?? ((Math.floor(random() * 0xffffffff) >>> 0) || 1);
    if (this.epoch === 0) throw new Error('transport: epoch must be non-zero');
    this.maxPacketSize = opts.maxPacketSize ?? 1200;
    if (this.maxPacketSize < 200) throw new Error('transport: maxPacketSize must be ≥ 200');
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 30_000;
    this.keepAliveMs = opts.keepAliveMs ?? Math.min(10_000, this.idleTimeoutMs / 3);
    this.sendBufferBytes = opts.sendBufferBytes ?? 1024 * 1024;
    this.maxStreamWindow = opts.maxStreamWindow ?? 16 * 1024 * 1024;
    this.maxConnWindow = opts.maxConnectionWindow ?? 64 * 1024 * 1024;
    this.maxPeerStreams = opts.maxPeerStreams ?? 4096;
    this.cc = new NewReno(this.maxPacketSize);
    this.nextLocalStream = this.side;
    this.lastReceived = now;
  }

  // ───────────────────────────── streams API ─────────────────────────────

  /** Opens a stream carrying `target` (≤ 64 bytes) to the peer; returns its id. */
  openStream(target: Uint8Array): number {
    if (this.closed) throw new Error('transport: connection closed');
    if (target.length > MAX_TARGET) throw new Error(`transport: stream target longer than ${MAX_TARGET} bytes`);
    const id = this.nextLocalStream;
    this.nextLocalStream += 2;
    const s = new Stream(id, true, target.slice());
    this.streams.set(id, s);
    this.queueSend(id); // the open goes out even before any data
    return id;
  }

  /**
   * Queues bytes on a stream; returns how many were accepted (the rest is the caller's to
   * retry after a 'writable' event). The accepted bytes are kept by reference: do not
   * modify them afterwards.
   */
  write(id: number, data: Uint8Array): number {
    const s = this.streams.get(id);
    if (!s || s.send.finRequested || s.send.resetCode !== null || this.closed) return 0;
    const room = this.sendBufferBytes - s.send.buffered;
    const n = Math.max(0, Math.min(room, data.length));
    if (n < data.length) s.send.blocked = true;
    if (n === 0) return 0;
    s.send.push(n === data.length ? data : data.subarray(0, n));
    this.queueSend(id);
    return n;
  }

  /** Half-closes our direction (TCP FIN). */
  finish(id: number): void {
    const s = this.streams.get(id);
    if (!s || s.send.finRequested || s.send.resetCode !== null) return;
    s.send.finRequested = true;
    this.queueSend(id);
  }

  /** Aborts the stream in both directions (TCP RST). */
  reset(id: number, code: number): void {
    const s = this.streams.get(id);
    if (!s || s.send.resetCode !== null) return;
    s.send.resetCode = code;
    s.send.chunks = [];
    s.send.lost.r.length = 0;
    s.recv.resetReceived = true; // we no longer want its bytes either
    s.recv.ready = [];
    s.recv.readyBytes = 0;
    s.recv.pending = [];
    this.pendingResets.add(id);
    this.maybeForget(s);
  }

  /** Next chunk of in-order bytes (a view, no copy), or null. Reading grants credit. */
  read(id: number): Uint8Array | null {
    const s = this.streams.get(id);
    if (!s) return null;
    const r = s.recv;
    const chunk = r.ready.shift();
    if (!chunk) return null;
    r.readyBytes -= chunk.length;
    r.consumed += chunk.length;
    this.connConsumed += chunk.length;
    this.st.streamBytesReceived += chunk.length;
    this.checkCredit(s);
    if (r.finReadable && !r.finDelivered) {
      r.finDelivered = true;
      this.events.push({ type: 'fin', id });
      this.maybeForget(s);
    }
    return chunk;
  }

  /** bytes readable right now on a stream */
  readable(id: number): number {
    return this.streams.get(id)?.recv.readyBytes ?? 0;
  }

  /** how many more bytes write() would accept right now */
  writableBytes(id: number): number {
    const s = this.streams.get(id);
    if (!s || s.send.finRequested || s.send.resetCode !== null) return 0;
    return Math.max(0, this.sendBufferBytes - s.send.buffered);
  }

  hasStream(id: number): boolean {
    return this.streams.has(id);
  }

  /** Drains the queued events. */
  pollEvents(): TransportEvent[] {
    const e = this.events;
    this.events = [];
    return e;
  }

  /** Closes the connection: every stream is reset, a CLOSE frame is sent by the next poll. */
  close(code: number = CLOSE_CODE.APPLICATION, reason = ''): void {
    if (this.closed) return;
    this.closeFrame = { type: 'close', code, reason: reason.slice(0, 200) };
    this.die(reason || 'closed locally', code);
  }

  /**
   * The datagram path changed (relay ↔ direct, new address): RTT and congestion state
   * restart. Packets in flight on the old path leave the congestion window at once (no
   * congestion signal) but stay acknowledgeable: when the old path still works (relay →
   * direct) they arrive and are acked, so nothing is sent twice and new data flows on the
   * new path immediately; whatever is not acked within the old path's loss delay (a dead
   * path, a lost packet) is re-sent then.
   */
  pathChanged(now: number): void {
    const oldLossDelay =
      this.rtt.hasSample ? TIME_THRESHOLD * Math.max(this.rtt.latest, this.rtt.smoothed) + MAX_ACK_DELAY_MS : 0;
    this.rtt.reset();
    this.cc.reset();
    this.lossTime = Infinity;
    for (const p of this.sent) {
      if (!p) continue;
      if (p.inFlight) {
        this.cc.onRemovedNoCongestion(p.size);
        if (p.ackEliciting) this.ackElicitingInFlight--;
        p.inFlight = false;
      }
      p.oldPathLostAt = Math.max(now, p.time + oldLossDelay);
      this.lossTime = Math.min(this.lossTime, p.oldPathLostAt);
    }
    this.ptoCount = 0;
    this.lastAckElicitingSent = now;
    this.ackNow = this.recvRanges.length > 0;
  }

  stats(): ConnectionStats {
    return {
      smoothedRttMs: this.rtt.smoothed,
      minRttMs: this.rtt.min === Infinity ? 0 : this.rtt.min,
      rttVarMs: this.rtt.variance,
      cwnd: this.cc.cwnd,
      bytesInFlight: this.cc.bytesInFlight,
      ptoCount: this.ptoCount,
      openStreams: this.streams.size,
      ...this.st,
    };
  }

  /**
   * Internal consistency check for tests and the simulator (cheap enough to run after every
   * poll there; production code never calls it). Returns a description of the first broken
   * invariant, or null: bytes in flight equal the sizes of the tracked in-flight packets and
   * never go negative; no non-probe packet went beyond cwnd; no stream or the connection
   * sent beyond the credit the peer granted or received beyond the credit we granted; every
   * stream's acknowledged/lost ranges lie at or above its send base.
   */
  checkInvariants(): string | null {
    let inFlight = 0;
    let elicitingInFlight = 0;
    for (const p of this.sent) {
      if (!p || !p.inFlight) continue;
      inFlight += p.size;
      if (p.ackEliciting) elicitingInFlight++;
    }
    if (inFlight !== this.cc.bytesInFlight) return `bytesInFlight ${this.cc.bytesInFlight} ≠ tracked ${inFlight}`;
    if (elicitingInFlight !== this.ackElicitingInFlight) return `ackElicitingInFlight ${this.ackElicitingInFlight} ≠ tracked ${elicitingInFlight}`;
    if (this.st.cwndViolations > 0) return `${this.st.cwndViolations} packet(s) sent beyond cwnd`;
    if (this.connSent > this.connMaxData) return `connection sent ${this.connSent} > credit ${this.connMaxData}`;
    if (this.connRecvHighest > this.connAdvertised) return `connection received ${this.connRecvHighest} > credit ${this.connAdvertised}`;
    for (const s of this.streams.values()) {
      const snd = s.send;
      if (snd.sent > snd.maxData) return `stream ${s.id} sent ${snd.sent} > credit ${snd.maxData}`;
      if (s.recv.highest > s.recv.advertised) return `stream ${s.id} received ${s.recv.highest} > credit ${s.recv.advertised}`;
      if (snd.resetCode !== null) continue;
      const a0 = snd.acked.r[0];
      if (a0 && a0[0] <= snd.base) return `stream ${s.id} acked range [${a0[0]},${a0[1]}) not above base ${snd.base}`;
      const l0 = snd.lost.r[0];
      if (l0 && l0[0] < snd.base) return `stream ${s.id} lost range below base ${snd.base}`;
      if (snd.base > snd.sent || snd.sent > snd.written) return `stream ${s.id} base/sent/written out of order`;
    }
    return null;
  }

  // ───────────────────────────── receive ─────────────────────────────

  /** Processes one datagram. Never throws; malformed packets are counted and dropped. */
  receive(packet: Uint8Array, now: number): void {
    if (this.closed) return;
    try {
      this.receiveInner(packet, now);
    } catch {
      this.st.malformed++;
    }
  }

  private receiveInner(packet: Uint8Array, now: number): void {
    const r = new Reader(packet, 0);
    const h = parseHeader(r);
    if (!h) {
      this.st.malformed++;
      return;
    }
    if (h.dstEpoch !== 0 && h.dstEpoch !== this.epoch) {
      // for an earlier incarnation of us: answer with a PING (at most every 50 ms) so the
      // peer learns our new epoch now rather than at the next keepalive
      if (!this.closed && now - this.lastStaleAnswer >= 50) {
        this.lastStaleAnswer = now;
        this.probesPending = Math.max(this.probesPending, 1);
      }
      return;
    }
    if (this.retiredPeerEpochs.has(h.srcEpoch)) return; // from the peer's earlier incarnation
    // parse every frame before acting on any, so a malformed packet changes nothing
    const frames: Frame[] = [];
    while (r.remaining > 0) {
      const f = parseFrame(r);
      if (!f) {
        this.st.malformed++;
        return;
      }
      frames.push(f);
    }
    if (frames.length === 0) {
      this.st.malformed++;
      return;
    }
    if (this.peerEpoch !== h.srcEpoch) {
      if (this.peerEpoch !== 0) this.peerRestarted(h.srcEpoch);
      this.peerEpoch = h.srcEpoch;
    }
    if (this.isDuplicate(h.pn)) return;
    this.st.packetsReceived++;
    this.st.bytesReceived += packet.length;
    this.lastReceived = now;

    let ackEliciting = false;
    for (const f of frames) {
      if (f.type !== 'ack') ackEliciting = true;
      this.handleFrame(f, now);
      if (this.closed) return;
    }
    this.recordReceived(h.pn, now, ackEliciting);
  }

  private isDuplicate(pn: number): boolean {
    for (const [lo, hi] of this.recvRanges) {
      if (pn > hi) return false;
      if (pn >= lo) return true;
    }
    // below everything we still track: treat as duplicate only if older than the tracked window
    const last = this.recvRanges[this.recvRanges.length - 1];
    return last !== undefined && this.recvRanges.length >= MAX_ACK_RANGES && pn < last[0];
  }

  private recordReceived(pn: number, now: number, ackEliciting: boolean): void {
    const rr = this.recvRanges;
    const largest = rr.length ? rr[0]![1] : -1;
    const outOfOrder = largest >= 0 && pn !== largest + 1;
    // insert pn into the descending inclusive range list
    let i = 0;
    while (i < rr.length && rr[i]![0] > pn + 1) i++;
    if (i < rr.length && rr[i]![1] + 1 >= pn && rr[i]![0] <= pn + 1) {
      const cur = rr[i]!;
      if (pn > cur[1]) cur[1] = pn;
      if (pn < cur[0]) cur[0] = pn;
      // merge with the previous (higher) range
      if (i > 0 && rr[i - 1]![0] === cur[1] + 1) {
        rr[i - 1]![0] = cur[0];
        rr.splice(i, 1);
      } else if (i + 1 < rr.length && rr[i + 1]![1] + 1 === cur[0]) {
        // merge with the next (lower) range
        cur[0] = rr[i + 1]![0];
        rr.splice(i + 1, 1);
      }
    } else {
      rr.splice(i, 0, [pn, pn]);
    }
    if (rr.length > MAX_ACK_RANGES) rr.length = MAX_ACK_RANGES;
    if (pn > largest) this.largestRecvTime = now;
    if (!ackEliciting) return;
    this.ackPendingCount++;
    // a gap (or a packet filling one) is acknowledged at once so the sender detects loss fast
    if (outOfOrder || rr.length > 1 || this.ackPendingCount >= ACK_EVERY) this.ackNow = true;
    else if (this.ackDeadline === Infinity) this.ackDeadline = now + MAX_ACK_DELAY_MS;
  }

  private handleFrame(f: Frame, now: number): void {
    switch (f.type) {
      case 'ping':
        return;
      case 'ack':
        this.onAck(f, now);
        return;
      case 'close':
        this.die(`peer closed: ${f.reason}`, f.code);
        return;
      case 'maxData':
        if (f.max > this.connMaxData) {
          this.connMaxData = f.max;
          this.requeueAllSendable();
        }
        return;
      case 'maxStreamData': {
        const s = this.streams.get(f.id);
        if (s && f.max > s.send.maxData) {
          s.send.maxData = f.max;
          this.queueSend(f.id);
        }
        return;
      }
      case 'reset': {
        const s = this.streamFor(f.id, null);
        if (!s || s.recv.resetReceived) return;
        this.abortByPeer(s, f.code);
        return;
      }
      case 'stream':
        this.onStreamFrame(f, now);
        return;
    }
  }

  /** finds or (for a peer-opened id never seen) creates the stream; null for stale ids */
  private streamFor(id: number, target: Uint8Array | null): Stream | null {
    const s = this.streams.get(id);
    if (s) return s;
    if ((id & 1) === this.side) return null; // ours, already forgotten
    if (id <= this.peerMaxSeen && !this.peerUnseen.has(id)) return null; // finished earlier
    if (this.peerOpenCount >= this.maxPeerStreams) {
      this.pendingResets.add(id);
      const dead = new Stream(id, false, null);
      dead.send.resetCode = RESET_CODE.STREAM_LIMIT;
      dead.recv.resetReceived = true;
      this.streams.set(id, dead);
      this.markSeen(id);
      return null;
    }
    this.markSeen(id);
    const ns = new Stream(id, false, null);
    if (target) ns.opened = true;
    this.streams.set(id, ns);
    this.peerOpenCount++;
    return ns;
  }

  private markSeen(id: number): void {
    if (id > this.peerMaxSeen) {
      const first = this.peerMaxSeen < 0 ? 1 - this.side : this.peerMaxSeen + 2;
      for (let k = first; k < id; k += 2) this.peerUnseen.add(k);
      this.peerMaxSeen = id;
    } else this.peerUnseen.delete(id);
  }

  private onStreamFrame(f: Extract<Frame, { type: 'stream' }>, now: number): void {
    const s = this.streamFor(f.id, f.target ?? null);
    if (!s) return;
    const r = s.recv;
    if (r.resetReceived) return;
    if (!s.opened && f.target) s.opened = true;
    if (!s.local && s.opened && !s.announced) {
      s.announced = true;
      this.events.push({ type: 'open', id: s.id, target: f.target ? f.target.slice() : new Uint8Array(0) });
    }
    const end = f.offset + f.data.length;
    if (end > r.advertised) {
      this.protocolError(CLOSE_CODE.FLOW_CONTROL, `stream ${s.id} exceeded its credit`);
      return;
    }
    if (f.fin) {
      if ((r.finalSize >= 0 && r.finalSize !== end) || end < r.highest) {
        this.protocolError(CLOSE_CODE.PROTOCOL, `stream ${s.id} final size changed`);
        return;
      }
      r.finalSize = end;
    } else if (r.finalSize >= 0 && end > r.finalSize) {
      this.protocolError(CLOSE_CODE.PROTOCOL, `stream ${s.id} data beyond its FIN`);
      return;
    }
    if (end > r.highest) {
      this.connRecvHighest += end - r.highest;
      r.highest = end;
      if (this.connRecvHighest > this.connAdvertised) {
        this.protocolError(CLOSE_CODE.FLOW_CONTROL, 'connection credit exceeded');
        return;
      }
    }
    const hadReady = r.readyBytes > 0;
    // copy out of the datagram: the caller may reuse its receive buffer
    const grew = f.data.length > 0 && r.insert(f.offset, f.data.slice());
    // a peer stream's data before its open is held until the target arrives ('announced'
    // means something else on our own streams: they are always readable)
    if (!s.local && !s.announced) return;
    if (grew && !hadReady) this.events.push({ type: 'readable', id: s.id });
    if (r.finReadable && !r.finDelivered) {
      r.finDelivered = true;
      this.events.push({ type: 'fin', id: s.id });
      this.maybeForget(s);
    }
    void now;
  }

  private abortByPeer(s: Stream, code: number): void {
    s.recv.resetReceived = true;
    s.recv.ready = [];
    s.recv.readyBytes = 0;
    s.recv.pending = [];
    if (s.send.resetCode === null) {
      s.send.resetCode = code;
      s.send.resetAcked = true; // nothing to tell the peer: it aborted the stream itself
      s.send.chunks = [];
      s.send.lost.r.length = 0;
    }
    if (s.local || s.announced) this.events.push({ type: 'reset', id: s.id, code });
    this.maybeForget(s);
  }

  private maybeForget(s: Stream): void {
    if (!s.done) return;
    this.streams.delete(s.id);
    if (!s.local && s.opened) this.peerOpenCount--;
    else if (!s.local) this.peerOpenCount--;
    this.pendingCredit.delete(s.id);
    if (s.local || s.announced) this.events.push({ type: 'closed', id: s.id });
  }

  private checkCredit(s: Stream): void {
    const r = s.recv;
    const now = this.lastReceived;
    if (r.finalSize < 0 && r.advertised - r.consumed < r.window / 2) {
      // auto-tune: credit used up within ~2 RTT means the window limits throughput
      if (now - r.lastCreditTime < 2 * this.rtt.smoothed && r.window < this.maxStreamWindow) {
        r.window = Math.min(this.maxStreamWindow, r.window * 2);
      }
      r.lastCreditTime = now;
      r.advertised = r.consumed + r.window;
      this.pendingCredit.add(s.id);
    }
    if (this.connAdvertised - this.connConsumed < this.connWindow / 2) {
      if (now - this.connLastCredit < 2 * this.rtt.smoothed && this.connWindow < this.maxConnWindow) {
        this.connWindow = Math.min(this.maxConnWindow, this.connWindow * 2);
      }
      this.connLastCredit = now;
      this.connAdvertised = this.connConsumed + this.connWindow;
      this.connCreditPending = true;
    }
  }

  // ───────────────────────────── ACK / recovery ─────────────────────────────

  private onAck(f: Extract<Frame, { type: 'ack' }>, now: number): void {
    if (f.largest >= this.nextPn) {
      this.protocolError(CLOSE_CODE.PROTOCOL, 'ACK of a packet never sent');
      return;
    }
    let newlyAcked = false;
    let largestNewly: SentPacket | null = null;
    let anyAckEliciting = false;
    for (const [lo, hi] of f.ranges) {
      const a = Math.max(lo, this.sentBase);
      const b = Math.min(hi, this.sentBase + this.sent.length - 1);
      for (let pn = a; pn <= b; pn++) {
        const idx = pn - this.sentBase;
        const p = this.sent[idx];
        if (!p) continue;
        this.sent[idx] = undefined;
        newlyAcked = true;
        if (!largestNewly || p.pn > largestNewly.pn) largestNewly = p;
        if (p.ackEliciting) anyAckEliciting = true;
        this.onPacketAcked(p);
      }
    }
    if (!newlyAcked) return;
    if (f.largest > this.largestAcked) this.largestAcked = f.largest;
    if (largestNewly && largestNewly.pn === f.largest && anyAckEliciting && largestNewly.oldPathLostAt === undefined) {
      this.rtt.update(now - largestNewly.time, Math.min(f.ackDelayUs / 1000, MAX_ACK_DELAY_MS));
    }
    this.detectLoss(now);
    this.ptoCount = 0;
    this.compactSent();
  }

  private onPacketAcked(p: SentPacket): void {
    if (p.inFlight) {
      this.cc.onAcked(p.size, p.time, false);
      if (p.ackEliciting) this.ackElicitingInFlight--;
    }
    for (const fr of p.frames) {
      switch (fr.k) {
        case SF.Stream: {
          const s = this.streams.get(fr.id);
          if (!s) break;
          const snd = s.send;
          if (snd.resetCode !== null) break;
          snd.onAcked(fr.off, fr.off + fr.len);
          if (fr.fin) snd.finAcked = true;
          if (snd.blocked && snd.buffered <= this.sendBufferBytes / 2) {
            snd.blocked = false;
            this.events.push({ type: 'writable', id: s.id });
          }
          this.maybeForget(s);
          break;
        }
        case SF.Reset: {
          const s = this.streams.get(fr.id);
          if (s && s.send.resetCode !== null) {
            s.send.resetAcked = true;
            this.maybeForget(s);
          }
          break;
        }
        default:
          break;
      }
    }
  }

  private detectLoss(now: number): void {
    const lossDelay = Math.max(TIME_THRESHOLD * Math.max(this.rtt.latest, this.rtt.smoothed), GRANULARITY_MS);
    const lostSendTime = now - lossDelay;
    this.lossTime = Infinity;
    const lost: SentPacket[] = [];
    const end = Math.min(this.sent.length, this.largestAcked - this.sentBase);
    for (let i = 0; i < this.sent.length; i++) {
      const p = this.sent[i];
      if (!p) continue;
      if (p.oldPathLostAt !== undefined) {
        if (p.oldPathLostAt <= now) {
          this.sent[i] = undefined;
          lost.push(p);
        } else this.lossTime = Math.min(this.lossTime, p.oldPathLostAt);
        continue;
      }
      if (i >= end) break;
      if (p.time <= lostSendTime || this.largestAcked >= p.pn + PACKET_THRESHOLD) {
        this.sent[i] = undefined;
        lost.push(p);
      } else {
        this.lossTime = Math.min(this.lossTime, p.time + lossDelay);
      }
    }
    if (lost.length) this.onPacketsLost(lost, now);
  }

  private onPacketsLost(lost: SentPacket[], now: number): void {
    let latestLost: SentPacket | null = null;
    let firstAE: SentPacket | null = null;
    let lastAE: SentPacket | null = null;
    let contiguous = true;
    let prevPn = -2;
    for (const p of lost) {
      this.st.packetsLost++;
      if (p.inFlight) {
        this.cc.onRemovedNoCongestion(p.size);
        if (p.ackEliciting) this.ackElicitingInFlight--;
        if (!latestLost || p.time > latestLost.time) latestLost = p;
      }
      if (p.ackEliciting && p.oldPathLostAt === undefined) {
        if (!firstAE) firstAE = p;
        lastAE = p;
      }
      if (prevPn >= 0 && p.pn !== prevPn + 1) contiguous = false;
      prevPn = p.pn;
      this.requeueFrames(p);
    }
    if (latestLost) this.cc.onCongestion(latestLost.time, now);
    if (firstAE && lastAE && contiguous && this.rtt.hasSample) {
      const pcDuration =
        (this.rtt.smoothed + Math.max(4 * this.rtt.variance, GRANULARITY_MS) + MAX_ACK_DELAY_MS) *
        PERSISTENT_CONGESTION_THRESHOLD;
      if (lastAE.time - firstAE.time > pcDuration) this.cc.onPersistentCongestion();
    }
  }

  /** puts a lost (or abandoned) packet's frames back on the send queues */
  private requeueFrames(p: SentPacket): void {
    for (const fr of p.frames) {
      switch (fr.k) {
        case SF.Stream: {
          const s = this.streams.get(fr.id);
          if (!s || s.send.resetCode !== null) break;
          s.send.onLost(fr.off, fr.off + fr.len);
          if (fr.fin && !s.send.finAcked) s.send.finLost = true;
          // a lost bare open (no bytes yet) is sent again
          if (fr.len === 0 && fr.off === 0 && !fr.fin && s.local && s.send.sent === 0) s.announced = false;
          this.st.packetsRetransmitted++;
          this.queueSend(fr.id);
          break;
        }
        case SF.Reset: {
          const s = this.streams.get(fr.id);
          if (s && !s.send.resetAcked) this.pendingResets.add(fr.id);
          else if (!s) this.pendingResets.add(fr.id);
          break;
        }
        case SF.MaxData:
          this.connCreditPending = true;
          break;
        case SF.MaxStreamData:
          if (this.streams.has(fr.id)) this.pendingCredit.add(fr.id);
          break;
        case SF.Ping:
          break;
      }
    }
  }

  private compactSent(): void {
    let k = 0;
    while (k < this.sent.length && this.sent[k] === undefined) k++;
    if (k > 0) {
      this.sent.splice(0, k);
      this.sentBase += k;
    }
  }

  private ptoDeadline(): number {
    if (this.ackElicitingInFlight <= 0) return Infinity;
    const pto =
      this.rtt.smoothed + Math.max(4 * this.rtt.variance, GRANULARITY_MS) + MAX_ACK_DELAY_MS;
    // Exponential backoff, capped: after a long outage (blackhole, bursty loss eating the
    // ACKs of the probes) the next probe must not be tens of seconds away — MPC parties wait
    // on every message. Two probes per period at the cap are a negligible load.
    const period = Math.min(pto * 2 ** Math.min(this.ptoCount, 16), Math.max(MAX_PTO_PERIOD_MS, 2 * pto));
    return this.lastAckElicitingSent + period;
  }

  private runTimers(now: number): void {
    if (this.closed) return;
    if (now - this.lastReceived >= this.idleTimeoutMs) {
      this.die('idle timeout', CLOSE_CODE.IDLE);
      return;
    }
    if (this.lossTime <= now) {
      this.detectLoss(now);
      this.compactSent();
    } else if (this.ptoDeadline() <= now) {
      this.ptoCount++;
      this.probesPending = 2;
      // probes carry the oldest unacknowledged data again (it stays in flight)
      let queued = 0;
      for (const p of this.sent) {
        if (!p || !p.ackEliciting) continue;
        for (const fr of p.frames) {
          if (fr.k === SF.Stream) {
            const s = this.streams.get(fr.id);
            if (s && s.send.resetCode === null) {
              s.send.onLost(fr.off, fr.off + fr.len);
              if (fr.fin && !s.send.finAcked) s.send.finLost = true;
              this.queueSend(fr.id);
            }
          }
        }
        if (++queued >= 2) break;
      }
    }
    if (this.ackDeadline <= now) this.ackNow = true;
    if (now - this.lastAckElicitingSent >= this.keepAliveMs && now - this.lastSent >= this.keepAliveMs) {
      this.probesPending = Math.max(this.probesPending, 1);
    }
  }

  /** When poll() next needs calling (ms, Infinity if never). */
  nextDeadline(): number {
    if (this.closed) return this.closeFrame ? 0 : Infinity;
    let d = this.lastReceived + this.idleTimeoutMs;
    d = Math.min(d, Math.max(this.lastAckElicitingSent, this.lastSent) + this.keepAliveMs);
    if (this.ackNow || this.probesPending > 0) return 0;
    d = Math.min(d, this.ackDeadline, this.lossTime, this.ptoDeadline());
    // pacing only matters when the window is open and something is waiting to go
    if (this.cc.canSend(this.maxPacketSize) && this.hasSendable()) {
      this.pruneSendQueue();
      if (this.hasSendable()) d = Math.min(d, Math.max(this.cc.pacingTime(), 0));
    }
    return d;
  }

  /** Alias of poll's timer step, for owners that prefer an explicit call. */
  onTimeout(now: number): void {
    this.runTimers(now);
  }

  // ───────────────────────────── send ─────────────────────────────

  private queueSend(id: number): void {
    if (!this.inSendQueue.has(id)) {
      this.inSendQueue.add(id);
      this.sendQueue.push(id);
    }
  }

  /** drops streams that have nothing to send (e.g. blocked on credit) from the queue */
  private pruneSendQueue(): void {
    const keep: number[] = [];
    for (const id of this.sendQueue) {
      const s = this.streams.get(id);
      if (s && this.streamWants(s)) keep.push(id);
      else this.inSendQueue.delete(id);
    }
    this.sendQueue = keep;
  }

  private requeueAllSendable(): void {
    for (const id of this.streams.keys()) this.queueSend(id);
  }

  private hasSendable(): boolean {
    return (
      this.sendQueue.length > 0 ||
      this.pendingResets.size > 0 ||
      this.pendingCredit.size > 0 ||
      this.connCreditPending
    );
  }

  /** what a stream could send now: lost ranges first, then new bytes within credit */
  private streamWants(s: Stream): boolean {
    const snd = s.send;
    if (snd.resetCode !== null) return false;
    if (snd.lost.length > 0 || snd.finLost) return true;
    if (s.local && !s.announced && snd.written === 0 && !snd.finRequested) return true; // a bare open
    const newAvail = Math.min(snd.written, snd.maxData) - snd.sent;
    if (newAvail > 0 && this.connSent < this.connMaxData) return true;
    if (snd.finRequested && !snd.finSent && snd.sent === snd.written) return true;
    return false;
  }

  /**
   * Runs due timers, then returns the datagrams to send now (each ≤ maxPacketSize),
   * honouring the congestion window and pacing. Call it after receive()/write() and at
   * nextDeadline().
   */
  poll(now: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    if (this.closed) {
      if (this.closeFrame) {
        const buf = new Uint8Array(this.maxPacketSize);
        let off = writeHeader(buf, { srcEpoch: this.epoch, dstEpoch: this.peerEpoch, pn: this.nextPn++ });
        off = writeFrame(buf, off, this.closeFrame);
        this.closeFrame = null;
        out.push(buf.subarray(0, off));
      }
      return out;
    }
    this.runTimers(now);
    if (this.closed) return this.poll(now);
    for (let guard = 0; guard < 100_000; guard++) {
      const probe = this.probesPending > 0;
      const wantData = this.hasSendable();
      const wantAck = this.ackNow || (this.ackDeadline <= now && this.ackPendingCount > 0);
      if (!probe && !wantData && !wantAck) break;
      const ccOk = probe || (this.cc.canSend(this.maxPacketSize) && this.cc.pacingTime() <= now);
      if (!ccOk && !wantAck) break;
      const pkt = this.buildPacket(now, ccOk, probe);
      if (!pkt) break;
      out.push(pkt);
    }
    return out;
  }

  private buildPacket(now: number, allowEliciting: boolean, probe: boolean): Uint8Array | null {
    const buf = new Uint8Array(this.maxPacketSize);
    const pn = this.nextPn;
    let off = writeHeader(buf, { srcEpoch: this.epoch, dstEpoch: this.peerEpoch, pn });
    const frames: SentFrame[] = [];
    let ackEliciting = false;
    let hasAck = false;
    const limit = this.maxPacketSize;

    if (this.recvRanges.length > 0 && (this.ackPendingCount > 0 || this.ackNow)) {
      const ack: Frame = {
        type: 'ack',
        largest: this.recvRanges[0]![1],
        ackDelayUs: Math.max(0, Math.round((now - this.largestRecvTime) * 1000)),
        ranges: this.recvRanges,
      };
      const n = frameSize(ack);
      if (off + n <= limit) {
        off = writeFrame(buf, off, ack);
        hasAck = true;
        this.ackPendingCount = 0;
        this.ackDeadline = Infinity;
        this.ackNow = false;
      }
    }

    if (allowEliciting) {
      // control frames
      for (const id of this.pendingResets) {
        const s = this.streams.get(id);
        const f: Frame = {
          type: 'reset',
          id,
          code: s?.send.resetCode ?? RESET_CODE.STREAM_LIMIT,
          finalSize: s ? s.send.written : 0,
        };
        const n = frameSize(f);
        if (off + n > limit) break;
        off = writeFrame(buf, off, f);
        frames.push({ k: SF.Reset, id });
        this.pendingResets.delete(id);
        ackEliciting = true;
      }
      if (this.connCreditPending) {
        const f: Frame = { type: 'maxData', max: this.connAdvertised };
        if (off + frameSize(f) <= limit) {
          off = writeFrame(buf, off, f);
          frames.push({ k: SF.MaxData });
          this.connCreditPending = false;
          ackEliciting = true;
        }
      }
      for (const id of this.pendingCredit) {
        const s = this.streams.get(id);
        this.pendingCredit.delete(id);
        if (!s) continue;
        const f: Frame = { type: 'maxStreamData', id, max: s.recv.advertised };
        const n = frameSize(f);
        if (off + n > limit) {
          this.pendingCredit.add(id);
          break;
        }
        off = writeFrame(buf, off, f);
        frames.push({ k: SF.MaxStreamData, id });
        ackEliciting = true;
      }
      // stream data, round robin
      let rounds = this.sendQueue.length;
      while (rounds-- > 0 && limit - off > 16) {
        const id = this.sendQueue[0]!;
        const s = this.streams.get(id);
        if (!s || !this.streamWants(s)) {
          this.sendQueue.shift();
          this.inSendQueue.delete(id);
          continue;
        }
        off = this.writeStreamFrames(s, buf, off, limit, frames);
        if (frames.some((x) => x.k === SF.Stream)) ackEliciting = true;
        // rotate: the stream goes to the back if it still wants to send
        this.sendQueue.shift();
        if (this.streamWants(s)) this.sendQueue.push(id);
        else this.inSendQueue.delete(id);
      }
      if (!ackEliciting && probe) {
        buf[off++] = 0x01; // PING
        frames.push({ k: SF.Ping });
        ackEliciting = true;
      }
    }
    if (!ackEliciting && !hasAck) return null;
    if (probe && ackEliciting) this.probesPending--;
    this.nextPn++;
    const pkt = buf.subarray(0, off);
    const record: SentPacket = { pn, time: now, size: off, ackEliciting, inFlight: ackEliciting, frames };
    this.sent.push(record);
    if (this.sent.length === 1) this.sentBase = pn;
    if (ackEliciting) {
      if (!probe && this.cc.bytesInFlight + off > this.cc.cwnd) this.st.cwndViolations++;
      this.cc.onSent(off, now, this.rtt.smoothed);
      this.ackElicitingInFlight++;
      this.lastAckElicitingSent = now;
    } else {
      this.sent[this.sent.length - 1] = undefined; // ack-only packets need no tracking
      this.compactSent();
    }
    this.lastSent = now;
    this.st.packetsSent++;
    this.st.bytesSent += off;
    return pkt;
  }

  /** writes as many STREAM frames of one stream as fit; returns the new offset */
  private writeStreamFrames(s: Stream, buf: Uint8Array, off: number, limit: number, frames: SentFrame[]): number {
    const snd = s.send;
    // 1. lost ranges
    while (snd.lost.length > 0) {
      const [start, end0] = snd.lost.r[0]!;
      const target = start === 0 ? (snd.target ?? undefined) : undefined;
      const overhead = streamFrameOverhead(s.id, start, end0 - start, target);
      const room = limit - off - overhead;
      if (room <= 0) return off;
      const end = Math.min(end0, start + room);
      const fin = snd.finRequested && end === snd.written && (snd.finLost || !snd.finSent);
      off = this.emitStream(s, buf, off, start, end, fin, target, frames);
      snd.lost.remove(start, end);
      if (fin) snd.finLost = false;
    }
    // a lost FIN with no bytes left to resend
    if (snd.finLost && !snd.finAcked) {
      const target = snd.written === 0 ? (snd.target ?? undefined) : undefined;
      const overhead = streamFrameOverhead(s.id, snd.written, 0, target);
      if (limit - off < overhead) return off;
      off = this.emitStream(s, buf, off, snd.written, snd.written, true, target, frames);
      snd.finLost = false;
    }
    // 2. new bytes within stream and connection credit
    for (;;) {
      const start = snd.sent;
      const target = start === 0 ? (snd.target ?? undefined) : undefined;
      const credit = Math.min(snd.maxData - start, this.connMaxData - this.connSent);
      const avail = Math.min(snd.written - start, Math.max(0, credit));
      const bareOpen = start === 0 && snd.written === 0 && s.local && !snd.finSent && !s.announced && !snd.finRequested;
      const finOnly = avail === 0 && snd.finRequested && !snd.finSent && start === snd.written;
      if (avail <= 0 && !bareOpen && !finOnly) return off;
      const overhead = streamFrameOverhead(s.id, start, Math.max(avail, 1), target);
      const room = limit - off - overhead;
      if (room <= 0 || (room < 64 && avail > room)) return off;
      const len = Math.min(avail, room);
      const end = start + len;
      const fin = snd.finRequested && end === snd.written;
      off = this.emitStream(s, buf, off, start, end, fin, target, frames);
      snd.sent = end;
      this.connSent += len;
      if (fin) snd.finSent = true;
      if (bareOpen) s.announced = true; // marks "open sent" for local streams
      if (len === 0) return off;
    }
  }

  private emitStream(
    s: Stream,
    buf: Uint8Array,
    off: number,
    start: number,
    end: number,
    fin: boolean,
    target: Uint8Array | undefined,
    frames: SentFrame[],
  ): number {
    buf[off++] = FT_STREAM | (fin ? STREAM_FIN : 0) | (target ? STREAM_OPEN : 0);
    off = writeVarint(buf, off, s.id);
    off = writeVarint(buf, off, start);
    if (target) {
      buf[off++] = target.length;
      buf.set(target, off);
      off += target.length;
    }
    off = writeVarint(buf, off, end - start);
    s.send.copy(start, end, buf, off);
    off += end - start;
    frames.push({ k: SF.Stream, id: s.id, off: start, len: end - start, fin });
    return off;
  }

  // ───────────────────────────── failure / restart ─────────────────────────────

  private protocolError(code: number, reason: string): void {
    this.closeFrame = { type: 'close', code, reason };
    this.die(`protocol error: ${reason}`, code);
  }

  private die(reason: string, code: number): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.streams.values()) {
      if (s.local || s.announced) this.events.push({ type: 'reset', id: s.id, code: RESET_CODE.CONNECTION_CLOSED });
    }
    this.streams.clear();
    this.events.push({ type: 'connectionClosed', reason, code });
  }

  private peerRestarted(newEpoch: number): void {
    const old = this.peerEpoch;
    this.retiredPeerEpochs.add(old);
    // Streams we opened that the old incarnation never acknowledged or answered may be
    // carried over: nothing of them reached a live peer application, so re-sending them
    // from offset 0 to the new incarnation is indistinguishable from opening them now. This
    // closes the race of a local connection accepted just as the peer agent restarted.
    const carried: Stream[] = [];
    for (const s of this.streams.values()) {
      const snd = s.send;
      const untouched = s.local && snd.base === 0 && snd.acked.length === 0 && !snd.finAcked && snd.resetCode === null
        && s.recv.highest === 0 && !s.recv.resetReceived && s.recv.finalSize < 0;
      if (untouched) carried.push(s);
      else if (s.local || s.announced) this.events.push({ type: 'reset', id: s.id, code: RESET_CODE.PEER_RESTART });
    }
    this.streams.clear();
    this.sendQueue = [];
    this.inSendQueue.clear();
    this.pendingResets.clear();
    this.pendingCredit.clear();
    for (const p of this.sent) if (p && p.inFlight) this.cc.onRemovedNoCongestion(p.size);
    this.sent = [];
    this.sentBase = this.nextPn;
    this.largestAcked = -1;
    this.lossTime = Infinity;
    this.ptoCount = 0;
    this.probesPending = 0;
    this.ackElicitingInFlight = 0;
    this.recvRanges = [];
    this.ackPendingCount = 0;
    this.ackDeadline = Infinity;
    this.ackNow = false;
    this.peerMaxSeen = -1;
    this.peerUnseen.clear();
    this.peerOpenCount = 0;
    this.connSent = 0;
    this.connMaxData = INITIAL_CONNECTION_CREDIT;
    this.connRecvHighest = 0;
    this.connConsumed = 0;
    this.connWindow = INITIAL_CONNECTION_CREDIT;
    this.connAdvertised = INITIAL_CONNECTION_CREDIT;
    this.connCreditPending = false;
    for (const st of carried) {
      const snd = st.send;
      snd.sent = 0;
      snd.acked = new RangeSet();
      snd.lost = new RangeSet();
      snd.finSent = false;
      snd.finLost = false;
      snd.maxData = INITIAL_STREAM_CREDIT;
      this.streams.set(st.id, st);
      this.queueSend(st.id);
    }
    this.events.push({ type: 'peerRestarted', oldEpoch: old, newEpoch });
  }
}

export { HEADER_FIXED, varintLen, FT_ACK };
