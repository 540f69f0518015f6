// Tail duplication on a lossy path: a packet carrying stream data that leaves with only a
// small flight outstanding (a request/response message such as an MPC round, not bulk) is
// sent a second time a fraction of an RTT later, while the path has lost packets recently.
// A lost message then costs that fraction instead of a probe timeout (≈ 1.2–2 RTT: the tail
// of an MPC round under loss), for one more small datagram per message while the path is
// lossy; a path without loss never sees a copy. The copy re-sends the same stream ranges in
// a new packet (the stream layer acknowledges ranges, so whichever copy arrives counts and
// the other is a duplicate the receiver drops). Pure state, milliseconds.

/** the path counts as lossy for this long after a packet (sent then) was declared lost */
export const LOSSY_FOR_MS = 10_000;
/** only packets sent with at most this many bytes in flight (themselves included) are copied */
export const DUP_MAX_FLIGHT_BYTES = 4 * 1200;
/** the copy leaves srtt / DUP_DELAY_RTT_DIVISOR after the original, within these bounds (ms) */
export const DUP_DELAY_RTT_DIVISOR = 8;
export const DUP_DELAY_MIN_MS = 1;
export const DUP_DELAY_MAX_MS = 5;
/** copies waiting at once (a bound: a flight this small holds only a few packets) */
const MAX_PENDING = 16;

export class TailDuplicator {
  private lastLossSentAt = -Infinity;
  /** packet numbers to copy and when, in time order */
  private pending: Array<{ pn: number; at: number }> = [];
  copiesScheduled = 0;

  /** a packet sent at `sentAt` was declared lost */
  onLoss(sentAt: number): void {
    if (sentAt > this.lastLossSentAt) this.lastLossSentAt = sentAt;
  }

  lossy(now: number): boolean {
    return now - this.lastLossSentAt < LOSSY_FOR_MS;
  }

  /** packet `pn` with stream data just left, `bytesInFlight` now in flight */
  onSent(pn: number, bytesInFlight: number, now: number, srtt: number): void {
    if (!this.lossy(now) || bytesInFlight > DUP_MAX_FLIGHT_BYTES || this.pending.length >= MAX_PENDING) return;
    const delay = Math.min(DUP_DELAY_MAX_MS, Math.max(DUP_DELAY_MIN_MS, srtt / DUP_DELAY_RTT_DIVISOR));
    this.pending.push({ pn, at: now + delay });
    this.copiesScheduled++;
  }

  nextDeadline(): number {
    return this.pending.length ? this.pending[0]!.at : Infinity;
  }

  /**
   * Packet `pn` was acknowledged: its copy is no longer wanted, and its deadline must not
   * wake the owner (on a short path the ACK comes before the copy would leave, so without
   * this every message of a lossy period would cost a timer wake-up for nothing).
   */
  onAcked(pn: number): void {
    const i = this.pending.findIndex((p) => p.pn === pn);
    if (i >= 0) this.pending.splice(i, 1);
  }

  /** the packet numbers whose copy is due at `now` (the caller skips those already acknowledged) */
  takeDue(now: number): number[] {
    let n = 0;
    while (n < this.pending.length && this.pending[n]!.at <= now) n++;
    return n === 0 ? [] : this.pending.splice(0, n).map((p) => p.pn);
  }

  /** a new path or a restarted peer: nothing pending, no loss history */
  reset(): void {
    this.pending = [];
    this.lastLossSentAt = -Infinity;
  }
}
