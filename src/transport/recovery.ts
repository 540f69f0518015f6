// Loss recovery (RFC 9002 §6): the history of sent packets, ACK processing, loss detection
// by packet and time threshold with adaptive thresholds, spurious-loss detection (undo), the
// probe timeout (PTO) with capped backoff, persistent congestion, and what a path change
// does to packets in flight. Owns the packet number space of the sender. Pure state: the
// connection supplies `now` and handles what acknowledged or lost frames mean.
import type { NewReno } from './congestion.js';
import { GRANULARITY_MS, type RttEstimator } from './rtt.js';
import { MAX_ACK_DELAY_MS } from './ack-tracker.js';

/** initial packet reordering threshold (RFC 9002 kPacketThreshold); raised on spurious loss */
const PACKET_THRESHOLD = 3;
/** the packet threshold never grows beyond this (loss is then found by the time threshold) */
const MAX_PACKET_THRESHOLD = 256;
/** RFC 9002 kTimeThreshold (× RTT) */
const TIME_THRESHOLD = 9 / 8;
/** the time threshold never grows beyond this multiple of the RTT */
const MAX_TIME_THRESHOLD = 2;
/** how many packets declared lost we remember to recognise a late ACK (spurious loss) */
const MAX_REMEMBERED_LOST = 1024;
/** RFC 9002 kPersistentCongestionThreshold (× PTO) */
const PERSISTENT_CONGESTION_THRESHOLD = 3;
/** longest PTO period after backoff (unless 2 × the base PTO is longer) */
const MAX_PTO_PERIOD_MS = 2000;
/** PTO backoff exponent cap (the period cap above binds long before) */
const MAX_PTO_BACKOFF = 16;

/** What a sent packet carried, to be acknowledged or re-sent (no payload: data is in the stream). */
export const enum SF {
  Stream,
  Reset,
  MaxData,
  MaxStreamData,
  MaxStreams,
  Ping,
}
export type SentFrame =
  | { k: SF.Stream; id: number; off: number; len: number; fin: boolean }
  | { k: SF.Reset; id: number }
  | { k: SF.MaxData }
  | { k: SF.MaxStreamData; id: number }
  | { k: SF.MaxStreams }
  | { k: SF.Ping };

export interface SentPacket {
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
  /** a DPLPMTUD probe (PING + PADDING): not in flight, never re-sent, never congestion */
  mtuProbe?: boolean;
}

/** What the connection does with acknowledged and lost packets' frames. */
export interface RecoveryHooks {
  onAcked(p: SentPacket): void;
  onLost(p: SentPacket): void;
}

interface LostRecord {
  pn: number;
  /** the largest acknowledged pn when it was declared lost */
  largestAcked: number;
  /** the congestion controller's recovery episode */
  episode: number;
  sentTime: number;
}

export class Recovery {
  /** next packet number to send */
  nextPn = 0;
  largestAcked = -1;
  /** earliest time a packet becomes lost by the time threshold (or an old-path deadline) */
  lossTime = Infinity;
  ptoCount = 0;
  lastAckElicitingSent = -Infinity;
  ackElicitingInFlight = 0;
  packetsLost = 0;
  spuriousLosses = 0;
  /**
   * Adaptive reordering threshold (RFC 9002 §6.1.1 allows it): starts at 3; when a packet we
   * declared lost is acknowledged after all (it was only reordered), it grows to the observed
   * reordering distance, so a path that reorders stops costing spurious retransmissions and
   * window reductions. Reset on a path change.
   */
  packetThreshold = PACKET_THRESHOLD;
  /** likewise for the time threshold (× RTT): grows when a packet lost by time was only late */
  timeThreshold = TIME_THRESHOLD;

  /** tracked packets, indexed by pn − sentBase; acknowledged or lost ones become undefined */
  private sent: Array<SentPacket | undefined> = [];
  private sentBase = 0;
  /** packets declared lost, ascending pn, at most MAX_REMEMBERED_LOST */
  private recentlyLost: LostRecord[] = [];

  constructor(
    private readonly rtt: RttEstimator,
    private readonly cc: NewReno,
    private readonly hooks: RecoveryHooks,
  ) {}

  /** records a packet just sent (ack-only packets need no tracking) */
  onSent(p: SentPacket): void {
    if (!p.ackEliciting) return;
    if (this.sent.length === 0) this.sentBase = p.pn;
    // a gap left by untracked ack-only packets
    while (this.sentBase + this.sent.length < p.pn) this.sent.push(undefined);
    this.sent.push(p);
    if (p.inFlight) {
      this.cc.onSent(p.size);
      this.ackElicitingInFlight++;
    }
    this.lastAckElicitingSent = p.time;
  }

  /**
   * Processes an ACK frame's ranges (inclusive, descending). Returns false when it
   * acknowledges a packet never sent (a protocol error).
   */
  onAck(largest: number, ackDelayUs: number, ranges: Array<[number, number]>, now: number): boolean {
    if (largest >= this.nextPn) return false;
    let newlyAcked = false;
    let largestNewly: SentPacket | null = null;
    let anyAckEliciting = false;
    const top = this.sentBase + this.sent.length - 1;
    for (const [lo, hi] of ranges) {
      const a = Math.max(lo, this.sentBase);
      const b = Math.min(hi, top);
      for (let pn = a; pn <= b; pn++) {
        const idx = pn - this.sentBase;
        const p = this.sent[idx];
        if (!p) continue;
        this.sent[idx] = undefined;
        newlyAcked = true;
        if (!largestNewly || p.pn > largestNewly.pn) largestNewly = p;
        if (p.ackEliciting) anyAckEliciting = true;
        if (p.inFlight) {
          this.cc.onAcked(p.size, p.time);
          if (p.ackEliciting) this.ackElicitingInFlight--;
        }
        this.hooks.onAcked(p);
      }
    }
    if (this.recentlyLost.length > 0) this.detectSpuriousLoss(ranges, now);
    if (!newlyAcked) return true;
    if (largest > this.largestAcked) this.largestAcked = largest;
    if (largestNewly && largestNewly.pn === largest && anyAckEliciting && largestNewly.oldPathLostAt === undefined) {
      this.rtt.update(now - largestNewly.time, Math.min(ackDelayUs / 1000, MAX_ACK_DELAY_MS));
    }
    this.detectLoss(now);
    this.ptoCount = 0;
    this.compact();
    return true;
  }

  /**
   * A packet we declared lost is acknowledged after all: it was reordered, not lost. Raise
   * the packet threshold to the reordering distance seen, and let congestion control undo
   * the window reduction when every loss of that recovery episode was spurious.
   */
  private detectSpuriousLoss(ranges: Array<[number, number]>, now: number): void {
    // A merge walk: the remembered losses ascend, the ranges descend, so one pass over both
    // (O(|lost| + |ranges|) per ACK, both bounded) finds every remembered loss now acked.
    const lowest = ranges[ranges.length - 1]![0];
    const keep: LostRecord[] = [];
    let ri = ranges.length - 1; // the lowest range first
    for (const info of this.recentlyLost) {
      const pn = info.pn;
      // below every range the receiver still reports: we will never learn more
      if (pn < lowest) continue;
      while (ri > 0 && ranges[ri]![1] < pn) ri--;
      const [lo, hi] = ranges[ri]!;
      if (pn < lo || pn > hi) {
        keep.push(info);
        continue;
      }
      this.spuriousLosses++;
      const distance = info.largestAcked - pn + 1;
      if (distance > this.packetThreshold) this.packetThreshold = Math.min(MAX_PACKET_THRESHOLD, distance);
      else {
        // declared lost by the time threshold: allow the delay this packet really took
        const needed = (now - info.sentTime) / Math.max(this.rtt.lossRtt, GRANULARITY_MS);
        if (needed > this.timeThreshold) this.timeThreshold = Math.min(MAX_TIME_THRESHOLD, needed * 1.05);
      }
      this.cc.onSpuriousLoss(info.episode);
    }
    this.recentlyLost = keep;
  }

  /** declares lost what the thresholds say is lost; re-arms the loss timer */
  detectLoss(now: number): void {
    const lossDelay = Math.max(this.timeThreshold * this.rtt.lossRtt, GRANULARITY_MS);
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
      // the same sum as the timer below: `p.time <= now - lossDelay` can round the other way
      // and leave lossTime = now, a timer that fires without declaring anything lost
      if (p.time + lossDelay <= now || this.largestAcked >= p.pn + this.packetThreshold) {
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
    let congestionLost = 0;
    for (const p of lost) {
      if (p.mtuProbe) {
        this.hooks.onLost(p); // the path may not carry its size: no sign of congestion
        continue;
      }
      this.packetsLost++;
      if (p.inFlight) {
        this.cc.onRemovedNoCongestion(p.size);
        if (p.ackEliciting) this.ackElicitingInFlight--;
        if (!latestLost || p.time > latestLost.time) latestLost = p;
        congestionLost++;
      }
      if (p.ackEliciting && p.oldPathLostAt === undefined) {
        if (!firstAE) firstAE = p;
        lastAE = p;
      }
      if (prevPn >= 0 && p.pn !== prevPn + 1) contiguous = false;
      prevPn = p.pn;
      this.hooks.onLost(p);
    }
    if (latestLost) {
      const episode = this.cc.onCongestion(latestLost.time, now, congestionLost);
      for (const p of lost) if (p.inFlight) this.rememberLost({ pn: p.pn, largestAcked: this.largestAcked, episode, sentTime: p.time });
    }
    if (firstAE && lastAE && contiguous && this.rtt.hasSample) {
      const pcDuration = this.rtt.ptoBase(MAX_ACK_DELAY_MS) * PERSISTENT_CONGESTION_THRESHOLD;
      if (lastAE.time - firstAE.time > pcDuration) this.cc.onPersistentCongestion();
    }
  }

  /** keeps the list in ascending pn order (losses are found mostly in order) and bounded */
  private rememberLost(r: LostRecord): void {
    const list = this.recentlyLost;
    let i = list.length;
    while (i > 0 && list[i - 1]!.pn > r.pn) i--;
    list.splice(i, 0, r);
    if (list.length > MAX_REMEMBERED_LOST) list.shift();
  }

  private compact(): void {
    let k = 0;
    while (k < this.sent.length && this.sent[k] === undefined) k++;
    if (k > 0) {
      this.sent.splice(0, k);
      this.sentBase += k;
    }
  }

  /** when the probe timeout fires (Infinity: nothing ack-eliciting in flight) */
  ptoDeadline(): number {
    if (this.ackElicitingInFlight <= 0) return Infinity;
    const pto = this.rtt.ptoBase(MAX_ACK_DELAY_MS);
    // Exponential backoff, capped: after a long outage (blackhole, bursty loss eating the
    // ACKs of the probes) the next probe must not be tens of seconds away — MPC parties wait
    // on every message. Two probes per period at the cap are a negligible load.
    const period = Math.min(pto * 2 ** Math.min(this.ptoCount, MAX_PTO_BACKOFF), Math.max(MAX_PTO_PERIOD_MS, 2 * pto));
    return this.lastAckElicitingSent + period;
  }

  /** when onTimer needs to run */
  nextDeadline(): number {
    return Math.min(this.lossTime, this.ptoDeadline());
  }

  /**
   * Runs the loss timer, else the PTO. On a PTO returns the (up to) `probes` oldest
   * ack-eliciting packets still unacknowledged, whose frames the probes should repeat.
   */
  onTimer(now: number, probes: number): SentPacket[] | null {
    if (this.lossTime <= now) {
      this.detectLoss(now);
      this.compact();
      return null;
    }
    if (this.ptoDeadline() > now) return null;
    this.ptoCount++;
    const oldest: SentPacket[] = [];
    for (const p of this.sent) {
      if (!p || !p.ackEliciting || p.mtuProbe) continue;
      oldest.push(p);
      if (oldest.length >= probes) break;
    }
    return oldest;
  }

  /**
   * The path changed: RTT and congestion state restart (the caller resets them); packets in
   * flight leave the window without a congestion signal, stay acknowledgeable, and are lost
   * only if not acknowledged within the old path's loss delay.
   */
  pathChanged(now: number): void {
    const oldLossDelay = this.rtt.hasSample ? this.timeThreshold * this.rtt.lossRtt + MAX_ACK_DELAY_MS : 0;
    this.packetThreshold = PACKET_THRESHOLD;
    this.timeThreshold = TIME_THRESHOLD;
    this.recentlyLost = [];
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
  }

  /** the packet `pn` while it is neither acknowledged nor declared lost */
  unacked(pn: number): SentPacket | undefined {
    return pn >= this.sentBase ? this.sent[pn - this.sentBase] : undefined;
  }

  /** stops tracking a packet without acknowledging or losing it (a probe given up) */
  forget(pn: number): void {
    const i = pn - this.sentBase;
    const p = this.sent[i];
    if (!p || p.inFlight) return; // only for packets outside the window
    this.sent[i] = undefined;
    this.compact();
  }

  /** forgets every packet (the peer restarted: none of them can be acknowledged any more) */
  reset(): void {
    for (const p of this.sent) if (p && p.inFlight) this.cc.onRemovedNoCongestion(p.size);
    this.sent = [];
    this.recentlyLost = [];
    this.sentBase = this.nextPn;
    this.largestAcked = -1;
    this.lossTime = Infinity;
    this.ptoCount = 0;
    this.ackElicitingInFlight = 0;
  }

  /** bytes in flight equal the tracked in-flight packets; null when consistent */
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
    return null;
  }
}
