// The sans-I/O transport connection: one per peer pair. Datagrams in (receive), datagrams
// out (poll), an explicit clock (`now`, ms) and nextDeadline(); poll(now) also runs every
// timer that is due (loss detection, PTO, ACK delay, keepalive, idle), so the owner only
// ever calls receive(), poll() and reads nextDeadline().
//
// This file keeps what belongs to the connection as a whole: epochs (peer restart and our
// own), close and idle, receive (parse, then dispatch) and poll (timers, then packets). The
// parts: recovery.ts (sent packets, loss, PTO), ack-tracker.ts (received packets, ACK
// timing), stream-map.ts (streams, flow control, scheduling), packet-builder.ts,
// congestion.ts (NewReno), pacer.ts, rtt.ts, mtu.ts (DPLPMTUD).
import { NewReno } from './congestion.js';
import { Pacer } from './pacer.js';
import { RttEstimator } from './rtt.js';
import { AckTracker, MAX_ACK_DELAY_MS } from './ack-tracker.js';
import { Recovery, SF, type SentPacket } from './recovery.js';
import { StreamMap, type FlowClock } from './stream-map.js';
import { PacketBuffers, PacketWriter, buildPacket } from './packet-builder.js';
import { MtuDiscovery } from './mtu.js';
import { TailDuplicator } from './tail-dup.js';
import { encodePacket, parsePacket, type Frame } from './wire.js';
import {
  CLOSE_CODE, DROP_REASONS, isParseError,
  type ConnectionOptions, type ConnectionStats, type DropReason, type ReceiveResult, type TransportEvent,
} from './types.js';

export { MAX_ACK_DELAY_MS };

/** a packet for an earlier incarnation of us is answered with a PING at most this often */
const STALE_EPOCH_ANSWER_MS = 50;
/** a PTO sends this many probes */
const PTO_PROBES = 2;
/** the largest CLOSE reason we send, in characters */
const MAX_CLOSE_REASON_CHARS = 200;
/** poll() builds at most this many packets per call (a bound, never reached in practice) */
const MAX_PACKETS_PER_POLL = 100_000;
/**
 * How many of the peer's earlier epochs we remember, newest first, to drop their late
 * packets. Late packets of an incarnation live as long as a packet in the network (about a
 * second); a real peer restarts far fewer than 8 times in that time, so only a peer cycling
 * epochs on purpose outruns the set, and a packet of an epoch it left long ago then counts
 * as one more restart — which that peer could cause with a fresh epoch anyway.
 */
export const RETIRED_PEER_EPOCHS_KEPT = 8;

export class Connection implements FlowClock {
  readonly side: 0 | 1;
  readonly epoch: number;
  readonly maxPacketSize: number;
  private readonly idleTimeoutMs: number;
  private readonly keepAliveMs: number;

  peerEpoch = 0;
  /** the peer's earlier epochs, oldest first, at most RETIRED_PEER_EPOCHS_KEPT */
  private retiredPeerEpochs = new Set<number>();
  closed = false;
  private closeFrame: Frame | null = null;

  readonly rtt = new RttEstimator();
  readonly cc: NewReno;
  private readonly pacer = new Pacer();
  private readonly recovery: Recovery;
  private readonly acks: AckTracker;
  private readonly buffers: PacketBuffers;
  private readonly streams: StreamMap;
  private readonly mtu: MtuDiscovery;
  /** null: tail duplication off (ConnectionOptions.duplicateTailsWhenLossy) */
  private readonly tailDup: TailDuplicator | null;
  /** ranges of a packet being copied were requeued: the next data packet is that copy (never copied again) */
  private copying = false;
  private events: TransportEvent[] = [];

  private probesPending = 0;
  /** when we last answered a packet addressed to an earlier incarnation of us */
  private lastStaleAnswer = -Infinity;
  lastReceived: number;
  private lastSent = -Infinity;

  private st = {
    packetsSent: 0,
    packetsReceived: 0,
    bytesSent: 0,
    bytesReceived: 0,
    malformed: 0,
    cwndViolations: 0,
    internalErrors: 0,
  };
  private dropped = Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>;

  constructor(opts: ConnectionOptions, now = 0) {
    const random = opts.random ?? Math.random;
    this.side = opts.side;
    this.epoch = opts.epoch ?? ((Math.floor(random() * 0xffffffff) >>> 0) || 1);
    if (this.epoch === 0) throw new Error('transport: epoch must be non-zero');
    this.maxPacketSize = opts.maxPacketSize ?? 1200;
    if (this.maxPacketSize < 200) throw new Error('transport: maxPacketSize must be ≥ 200');
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 30_000;
    this.keepAliveMs = opts.keepAliveMs ?? Math.min(10_000, this.idleTimeoutMs / 3);
    this.cc = new NewReno(this.maxPacketSize, opts.maxCongestionWindow);
    this.acks = new AckTracker(opts.ackEveryPackets);
    this.buffers = new PacketBuffers(opts.headroom ?? 0, opts.tailroom ?? 0);
    this.mtu = new MtuDiscovery(this.maxPacketSize);
    this.tailDup = opts.duplicateTailsWhenLossy === false ? null : new TailDuplicator();
    this.recovery = new Recovery(this.rtt, this.cc, {
      onAcked: (p) => {
        if (p.mtuProbe) {
          if (this.mtu.isProbe(p.pn) && this.mtu.onProbeAcked()) this.onPacketSizeChanged();
          return;
        }
        this.mtu.onPacketAcked(p.pn, p.size);
        this.tailDup?.onAcked(p.pn);
        for (const fr of p.frames) this.streams.onFrameAcked(fr);
      },
      onLost: (p) => {
        if (p.mtuProbe) {
          if (this.mtu.isProbe(p.pn)) this.mtu.onProbeLost();
          return;
        }
        if (this.mtu.onPacketLost(p.pn, p.size)) this.onPacketSizeChanged();
        // a packet left behind on the old path says nothing about the new one
        if (p.oldPathLostAt === undefined) this.tailDup?.onLoss(p.time);
        this.requeue(p);
      },
    });
    this.streams = new StreamMap(
      {
        side: this.side,
        sendBufferBytes: opts.sendBufferBytes ?? 1024 * 1024,
        maxStreamWindow: opts.maxStreamWindow ?? 16 * 1024 * 1024,
        maxConnectionWindow: opts.maxConnectionWindow ?? 64 * 1024 * 1024,
        maxPeerStreams: opts.maxPeerStreams ?? 4096,
      },
      this,
      this.events,
    );
    this.lastReceived = now;
    if (opts.pathMaxPacketSize) this.mtu.setPathMax(opts.pathMaxPacketSize);
  }

  /**
   * The largest transport packet the path could carry (e.g. ~65000 on loopback or a LAN,
   * ~1400 on the Internet): the connection probes up to it from maxPacketSize (DPLPMTUD).
   */
  setPathMaxPacketSize(n: number): void {
    this.mtu.setPathMax(n);
  }

  /** the packet size in use now (maxPacketSize until a probe confirmed a larger one) */
  get packetSize(): number {
    return this.mtu.current;
  }

  /** congestion control counts in packets of the size in use */
  private onPacketSizeChanged(): void {
    this.cc.maxDatagram = this.mtu.current;
    this.cc.cwnd = Math.min(this.cc.maxCwnd, Math.max(this.cc.cwnd, this.cc.minWindow));
  }

  /** FlowClock: the smoothed RTT for flow-control auto-tuning */
  get srtt(): number {
    return this.rtt.smoothed;
  }

  // ───────────────────────────── streams API ─────────────────────────────

  /** Opens a stream carrying `target` (≤ 64 bytes) to the peer; returns its id. */
  openStream(target: Uint8Array): number {
    if (this.closed) throw new Error('transport: connection closed');
    return this.streams.open(target);
  }

  /**
   * Queues bytes on a stream; returns how many were accepted (the rest is the caller's to
   * retry after a 'writable' event). The accepted bytes are kept by reference: do not
   * modify them afterwards.
   */
  write(id: number, data: Uint8Array): number {
    return this.closed ? 0 : this.streams.write(id, data);
  }

  /** Half-closes our direction (TCP FIN). */
  finish(id: number): void {
    this.streams.finish(id);
  }

  /** Aborts the stream in both directions (TCP RST). */
  reset(id: number, code: number): void {
    this.streams.reset(id, code);
  }

  /** Next chunk of in-order bytes (a view, no copy), or null. Reading grants credit. */
  read(id: number): Uint8Array | null {
    return this.streams.read(id);
  }

  /** bytes readable right now on a stream */
  readable(id: number): number {
    return this.streams.readable(id);
  }

  /** how many more bytes write() would accept right now */
  writableBytes(id: number): number {
    return this.streams.writableBytes(id);
  }

  hasStream(id: number): boolean {
    return this.streams.has(id);
  }

  /** Drains the queued events. */
  pollEvents(): TransportEvent[] {
    if (this.events.length === 0) return [];
    const e = this.events.splice(0);
    return e;
  }

  /** Closes the connection: every stream is reset, a CLOSE frame is sent by the next poll. */
  close(code: number = CLOSE_CODE.APPLICATION, reason = ''): void {
    if (this.closed) return;
    this.closeFrame = { type: 'close', code, reason: reason.slice(0, MAX_CLOSE_REASON_CHARS) };
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
    this.recovery.pathChanged(now); // uses the old path's RTT: before the reset
    this.rtt.reset();
    this.cc.reset();
    this.pacer.reset();
    this.mtu.pathChanged();
    this.onPacketSizeChanged();
    this.tailDup?.reset();
    this.acks.requestImmediate();
  }

  stats(): ConnectionStats {
    return {
      smoothedRttMs: this.rtt.smoothed,
      minRttMs: this.rtt.min === Infinity ? 0 : this.rtt.min,
      rttVarMs: this.rtt.variance,
      cwnd: this.cc.cwnd,
      bytesInFlight: this.cc.bytesInFlight,
      ptoCount: this.recovery.ptoCount,
      openStreams: this.streams.size,
      packetsLost: this.recovery.packetsLost,
      spuriousLosses: this.recovery.spuriousLosses,
      packetsRetransmitted: this.streams.packetsRetransmitted,
      streamBytesReceived: this.streams.streamBytesReceived,
      reassemblyBytes: this.streams.reassemblyBytes,
      dropped: { ...this.dropped },
      packetSize: this.mtu.current,
      tailCopies: this.tailDup?.copiesScheduled ?? 0,
      mtuProbes: this.mtu.probesSent,
      mtuBlackHoles: this.mtu.blackHoles,
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
    const r = this.recovery.checkInvariants();
    if (r) return r;
    if (this.st.cwndViolations > 0) return `${this.st.cwndViolations} packet(s) sent beyond cwnd`;
    return this.streams.checkInvariants();
  }

  // ───────────────────────────── receive ─────────────────────────────

  /**
   * Processes one datagram, which becomes the connection's (see ConnectionOptions): stream
   * data is kept as views of it. Never throws; what is dropped is counted by reason and the
   * reason returned.
   */
  receive(packet: Uint8Array, now: number): ReceiveResult {
    if (this.closed) return this.drop('closed');
    try {
      return this.receiveInner(packet, now);
    } catch {
      // parsers never throw on any input: an exception here is a bug, counted apart so that
      // tests notice (they assert internalErrors === 0) instead of it passing as "malformed"
      this.st.internalErrors++;
      return this.drop('internal_error');
    }
  }

  private drop(reason: DropReason): DropReason {
    this.dropped[reason]++;
    if (isParseError(reason)) this.st.malformed++;
    return reason;
  }

  private receiveInner(packet: Uint8Array, now: number): ReceiveResult {
    // every frame is parsed before any is acted on, so a malformed packet changes nothing
    const parsed = parsePacket(packet);
    if (typeof parsed === 'string') return this.drop(parsed);
    const h = parsed.header;
    if (h.dstEpoch !== 0 && h.dstEpoch !== this.epoch) {
      // for an earlier incarnation of us: answer with a PING (at most every 50 ms) so the
      // peer learns our new epoch now rather than at the next keepalive
      if (now - this.lastStaleAnswer >= STALE_EPOCH_ANSWER_MS) {
        this.lastStaleAnswer = now;
        this.probesPending = Math.max(this.probesPending, 1);
      }
      return this.drop('stale_epoch');
    }
    if (this.retiredPeerEpochs.has(h.srcEpoch)) return this.drop('retired_epoch'); // the peer's earlier incarnation
    if (this.peerEpoch !== h.srcEpoch) {
      if (this.peerEpoch !== 0) this.peerRestarted(h.srcEpoch);
      this.peerEpoch = h.srcEpoch;
    }
    if (this.acks.isDuplicate(h.pn)) return this.drop('duplicate');
    if (!this.streams.admits(parsed.frames)) return this.drop('over_budget');
    this.st.packetsReceived++;
    this.st.bytesReceived += packet.length;
    this.lastReceived = now;

    let ackEliciting = false;
    /** ack-eliciting frames that tell us nothing new: PINGs, STREAM frames of data we had */
    let eliciting = 0;
    let pings = 0;
    const repeatedBefore = this.streams.repeatedStreamFrames;
    for (const f of parsed.frames) {
      if (f.type !== 'ack' && f.type !== 'padding') {
        ackEliciting = true;
        eliciting++;
        if (f.type === 'ping') pings++;
      }
      this.handleFrame(f, now, packet.length);
      if (this.closed) return 'ok';
    }
    this.acks.onReceived(h.pn, now, ackEliciting);
    // A probe (PING) or data we already had (re-sent because our ACK was lost or late) is
    // acknowledged at once, as TCP answers a duplicate segment: coalesced, the two probes of
    // a PTO would get one ACK, and one lost ACK would cost the whole PTO round again.
    if (eliciting > 0 && pings + this.streams.repeatedStreamFrames - repeatedBefore === eliciting) this.acks.requestImmediate();
    return 'ok';
  }

  private handleFrame(f: Frame, now: number, datagramLength: number): void {
    let violation = null;
    switch (f.type) {
      case 'padding':
      case 'ping':
        return;
      case 'ack':
        if (!this.recovery.onAck(f.largest, f.ackDelayUs, f.ranges, now)) {
          this.protocolError(CLOSE_CODE.PROTOCOL, 'ACK of a packet never sent');
        }
        return;
      case 'close':
        this.die(`peer closed: ${f.reason}`, f.code);
        return;
      case 'maxData':
        this.streams.onMaxData(f.max);
        return;
      case 'maxStreamData':
        this.streams.onMaxStreamData(f.id, f.max);
        return;
      case 'maxStreams':
        this.streams.onMaxStreams(f.max);
        return;
      case 'reset':
        violation = this.streams.onReset(f.id, f.code, f.finalSize);
        break;
      case 'stream':
        violation = this.streams.onStreamFrame(f, datagramLength);
        break;
    }
    if (violation) this.protocolError(violation.code, violation.reason);
  }

  /** puts a lost (or probed) packet's frames back on the send queues */
  private requeue(p: SentPacket): void {
    for (const fr of p.frames) this.streams.onFrameLost(fr);
  }

  // ───────────────────────────── timers ─────────────────────────────

  private runTimers(now: number): void {
    if (this.closed) return;
    if (now - this.lastReceived >= this.idleTimeoutMs) {
      this.die('idle timeout', CLOSE_CODE.IDLE);
      return;
    }
    const probed = this.recovery.onTimer(now, PTO_PROBES);
    if (probed) {
      // a PTO: the probes carry the oldest unacknowledged data again (it stays in flight)
      this.probesPending = PTO_PROBES;
      for (const p of probed) this.requeue(p);
    }
    this.acks.onTimer(now);
    this.copyDueTails(now);
    const expired = this.mtu.expire(now);
    if (expired >= 0) this.recovery.forget(expired);
    const lastEliciting = this.recovery.lastAckElicitingSent;
    if (now - lastEliciting >= this.keepAliveMs && now - this.lastSent >= this.keepAliveMs) {
      this.probesPending = Math.max(this.probesPending, 1);
    }
  }

  /** requeues the stream ranges of small tail packets whose copy is due and which are still unacknowledged */
  private copyDueTails(now: number): void {
    if (!this.tailDup) return;
    for (const pn of this.tailDup.takeDue(now)) {
      const p = this.recovery.unacked(pn);
      if (!p || p.oldPathLostAt !== undefined) continue;
      for (const fr of p.frames) this.streams.onFrameLost(fr);
      this.copying = true;
    }
  }

  /** When poll() next needs calling (ms, Infinity if never). */
  nextDeadline(): number {
    if (this.closed) return this.closeFrame ? 0 : Infinity;
    let d = this.lastReceived + this.idleTimeoutMs;
    d = Math.min(d, Math.max(this.recovery.lastAckElicitingSent, this.lastSent) + this.keepAliveMs);
    if (this.probesPending > 0) return 0;
    d = Math.min(d, this.acks.nextDeadline(), this.recovery.nextDeadline(), this.mtu.nextDeadline(), this.tailDup?.nextDeadline() ?? Infinity);
    if (this.mtu.nextProbe() > 0) return 0;
    // pacing only matters when the window is open and something is waiting to go
    if (this.cc.available >= this.maxPacketSize && this.streams.hasSendable()) {
      this.streams.prune();
      if (this.streams.hasSendable()) d = Math.min(d, this.pacer.nextTime());
    }
    return d;
  }

  /** Alias of poll's timer step, for owners that prefer an explicit call. */
  onTimeout(now: number): void {
    this.runTimers(now);
  }

  // ───────────────────────────── send ─────────────────────────────

  /**
   * Runs due timers, then returns the datagrams to send now (each ≤ maxPacketSize),
   * honouring the congestion window and pacing. Call it after receive()/write() and at
   * nextDeadline().
   */
  poll(now: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    if (this.closed) {
      if (this.closeFrame) {
        const pkt = encodePacket({ srcEpoch: this.epoch, dstEpoch: this.peerEpoch, pn: this.recovery.nextPn++ }, [this.closeFrame]);
        out.push(this.buffers.copy(pkt));
        this.closeFrame = null;
      }
      return out;
    }
    this.runTimers(now);
    if (this.closed) return this.poll(now);
    const probeSize = this.mtu.nextProbe();
    if (probeSize > 0) out.push(this.sendMtuProbe(now, probeSize));
    for (let n = 0; n < MAX_PACKETS_PER_POLL; n++) {
      const probe = this.probesPending > 0;
      const wantData = this.streams.hasSendable();
      const wantAck = this.acks.mustSend(now);
      if (!probe && !wantData && !wantAck) break;
      const ccOk = probe || (this.cc.available >= this.maxPacketSize && this.pacer.canSend(now));
      if (!ccOk && !wantAck) break;
      const pkt = this.sendPacket(now, ccOk, probe);
      if (!pkt) break;
      out.push(pkt);
    }
    return out;
  }

  private sendPacket(now: number, allowEliciting: boolean, probe: boolean): Uint8Array | null {
    const pn = this.recovery.nextPn;
    // A packet larger than the base never goes beyond the window. PTO probes (which may) are
    // base-sized: if the path stopped carrying large packets, the probes still get through,
    // their ACKs reveal the large losses, and DPLPMTUD's black-hole detection falls back.
    const limit = probe ? this.maxPacketSize : Math.min(this.mtu.current, Math.max(this.maxPacketSize, Math.floor(this.cc.available)));
    const built = buildPacket(this.buffers, { srcEpoch: this.epoch, dstEpoch: this.peerEpoch, pn }, limit, now, this.acks, this.streams, allowEliciting, probe);
    if (!built) return null;
    const size = built.bytes.length;
    if (probe && built.ackEliciting) this.probesPending--;
    this.recovery.nextPn++;
    if (built.ackEliciting) {
      if (!probe && this.cc.bytesInFlight + size > this.cc.cwnd) this.st.cwndViolations++;
      this.pacer.onSent(size, now, this.cc.cwnd, this.rtt.smoothed);
    }
    this.recovery.onSent({ pn, time: now, size, ackEliciting: built.ackEliciting, inFlight: built.ackEliciting, frames: built.frames });
    if (this.tailDup && built.frames.some((f) => f.k === SF.Stream)) {
      if (this.copying) this.copying = false;
      else this.tailDup.onSent(pn, this.cc.bytesInFlight, now, this.rtt.smoothed);
    }
    this.lastSent = now;
    this.st.packetsSent++;
    this.st.bytesSent += size;
    return built.bytes;
  }

  /** a DPLPMTUD probe: PING + PADDING to `size`, outside the congestion window */
  private sendMtuProbe(now: number, size: number): Uint8Array {
    const pn = this.recovery.nextPn++;
    const w = new PacketWriter(this.buffers.begin(size), { srcEpoch: this.epoch, dstEpoch: this.peerEpoch, pn }, size);
    w.writePing();
    w.writeFrame({ type: 'padding', length: w.room }, null);
    const bytes = this.buffers.finish(w.off);
    this.recovery.onSent({ pn, time: now, size, ackEliciting: true, inFlight: false, frames: w.frames, mtuProbe: true });
    // given up after a PTO's worth of waiting (it is not in flight, so no PTO covers it)
    this.mtu.onProbeSent(pn, size, now + this.rtt.ptoBase(MAX_ACK_DELAY_MS));
    this.lastSent = now;
    this.st.packetsSent++;
    this.st.bytesSent += size;
    return bytes;
  }

  // ───────────────────────────── failure / restart ─────────────────────────────

  private protocolError(code: number, reason: string): void {
    this.closeFrame = { type: 'close', code, reason };
    this.die(`protocol error: ${reason}`, code);
  }

  private die(reason: string, code: number): void {
    if (this.closed) return;
    this.closed = true;
    this.streams.closeAll();
    this.events.push({ type: 'connectionClosed', reason, code });
  }

  private peerRestarted(newEpoch: number): void {
    const old = this.peerEpoch;
    this.retiredPeerEpochs.add(old);
    if (this.retiredPeerEpochs.size > RETIRED_PEER_EPOCHS_KEPT) {
      this.retiredPeerEpochs.delete(this.retiredPeerEpochs.values().next().value!); // the oldest (a Set keeps insertion order)
    }
    this.streams.peerRestarted();
    this.recovery.reset();
    this.tailDup?.reset();
    this.probesPending = 0;
    this.acks.reset();
    this.events.push({ type: 'peerRestarted', oldEpoch: old, newEpoch });
  }
}
