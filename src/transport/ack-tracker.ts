// Received packet numbers and when to acknowledge them (RFC 9000 §13.2): the newest ranges
// of received packet numbers, duplicate detection, and the ACK timing policy.

/** advertised (protocol constant) maximum ACK delay: the receiver acks within this */
export const MAX_ACK_DELAY_MS = 2;
/** the receiver tracks (and reports) the newest this many ranges */
export const MAX_ACK_RANGES = 32;
/**
 * Ack at once after this many ack-eliciting packets (default of the ackEveryPackets option).
 * RFC 9000 suggests 2; we own both ends and pace, so a sender's window grows the same with
 * fewer ACKs, and request/response traffic (one or a few packets per message) gets its ACK
 * on the reply instead of in a datagram of its own.
 */
export const ACK_EVERY = 8;

export class AckTracker {
  /** received packet numbers as inclusive [lo, hi] ranges, newest (highest) first */
  ranges: Array<[number, number]> = [];
  /** when the largest packet number was received (for the ACK delay field) */
  private largestTime = 0;
  /** ack-eliciting packets received since the last ACK we sent */
  private pending = 0;
  /** the latest time an ACK may wait until */
  private deadline = Infinity;
  /** an ACK must go out at the next opportunity */
  private immediate = false;

  constructor(private readonly ackEvery = ACK_EVERY) {}

  reset(): void {
    this.ranges = [];
    this.pending = 0;
    this.deadline = Infinity;
    this.immediate = false;
  }

  get largest(): number {
    return this.ranges.length ? this.ranges[0]![1] : -1;
  }

  /** seen before, or older than every range still tracked (then possibly a duplicate) */
  isDuplicate(pn: number): boolean {
    const rr = this.ranges;
    for (const [lo, hi] of rr) {
      if (pn > hi) return false;
      if (pn >= lo) return true;
    }
    const last = rr[rr.length - 1];
    return last !== undefined && rr.length >= MAX_ACK_RANGES && pn < last[0];
  }

  onReceived(pn: number, now: number, ackEliciting: boolean): void {
    const rr = this.ranges;
    const largest = this.largest;
    const outOfOrder = largest >= 0 && pn !== largest + 1;
    // insert pn into the descending inclusive range list
    let i = 0;
    while (i < rr.length && rr[i]![0] > pn + 1) i++;
    if (i < rr.length && rr[i]![1] + 1 >= pn && rr[i]![0] <= pn + 1) {
      const cur = rr[i]!;
      if (pn > cur[1]) cur[1] = pn;
      if (pn < cur[0]) cur[0] = pn;
      if (i > 0 && rr[i - 1]![0] === cur[1] + 1) {
        // merge with the previous (higher) range
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
    if (pn > largest) this.largestTime = now;
    if (!ackEliciting) return;
    this.pending++;
    // a new gap (or a late packet) is acknowledged at once so the sender detects loss fast
    // (RFC 9000 §13.2.1). Old gaps stay in the ranges for good (retransmissions use new
    // packet numbers), so "has a gap" would mean "ack every packet" after the first loss.
    if (outOfOrder || this.pending >= this.ackEvery) this.immediate = true;
    else if (this.deadline === Infinity) this.deadline = now + MAX_ACK_DELAY_MS;
  }

  /** runs the delay timer */
  onTimer(now: number): void {
    if (this.deadline <= now) this.immediate = true;
  }

  /** an ACK must be sent now, alone if nothing else goes */
  mustSend(now: number): boolean {
    return this.immediate || (this.deadline <= now && this.pending > 0);
  }

  /** an ACK is owed: it rides along in any packet that goes out */
  get owed(): boolean {
    return this.ranges.length > 0 && (this.pending > 0 || this.immediate);
  }

  /** when the ACK timer needs to run (0: now) */
  nextDeadline(): number {
    return this.immediate ? 0 : this.deadline;
  }

  /** microseconds since the largest packet number arrived (the ACK frame's delay field) */
  ackDelayUs(now: number): number {
    return Math.max(0, Math.round((now - this.largestTime) * 1000));
  }

  onAckSent(): void {
    this.pending = 0;
    this.deadline = Infinity;
    this.immediate = false;
  }

  /** acknowledge at once what we have (e.g. after a path change, so the peer's RTT restarts) */
  requestImmediate(): void {
    this.immediate = this.ranges.length > 0;
  }
}
