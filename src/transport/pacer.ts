// The pacer (RFC 9002 §7.7): spreads a congestion window over one smoothed RTT at 1.25×
// the window rate, with a burst allowance, so a window opening does not leave as one
// line-rate burst that overflows a bottleneck queue. Pure state, milliseconds.
import { GRANULARITY_MS } from './rtt.js';

/** send at this multiple of cwnd/srtt, so pacing itself never limits a window's worth */
export const PACING_GAIN = 1.25;
/** packets that may leave back to back after an idle period */
export const PACING_BURST_PACKETS = 10;
/**
 * The pacer lets a packet go up to this much before its ideal time. Real timers cannot wait
 * less than about a millisecond, so finer pacing would only turn every gap into a 1 ms+
 * sleep and cap throughput at ~10 packets per timer tick; this keeps bursts within one tick.
 */
export const PACING_SLACK_MS = 1;

export class Pacer {
  /** ideal departure time of the next packet */
  private nextSendTime = 0;

  reset(): void {
    this.nextSendTime = 0;
  }

  /** a packet of `bytes` left at `now` with the window `cwnd` and RTT `srtt` */
  onSent(bytes: number, now: number, cwnd: number, srtt: number): void {
    const rate = (PACING_GAIN * cwnd) / Math.max(srtt, GRANULARITY_MS);
    const interval = bytes / rate;
    // credit for idle time is capped at a burst of PACING_BURST_PACKETS packets of this size
    this.nextSendTime = Math.max(this.nextSendTime, now - PACING_BURST_PACKETS * interval) + interval;
  }

  /** may a packet leave at `now`? */
  canSend(now: number): boolean {
    return this.nextSendTime <= now + PACING_SLACK_MS;
  }

  /** when the next packet may leave (for the owner's timer) */
  nextTime(): number {
    return Math.max(this.nextSendTime - PACING_SLACK_MS, 0);
  }
}
