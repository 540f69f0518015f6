// RTT estimation (RFC 9002 §5): latest, smoothed, variance and min RTT from ACK samples,
// with the derived loss delay and base PTO period. Pure state, milliseconds.

/** timer granularity: no loss delay or PTO term is shorter (RFC 9002 kGranularity) */
export const GRANULARITY_MS = 1;
/** RTT assumed before the first sample (RFC 9002 §6.2.2 suggests 333 ms; MPC paths are short) */
export const INITIAL_RTT_MS = 100;

export class RttEstimator {
  latest = 0;
  smoothed = INITIAL_RTT_MS;
  variance = INITIAL_RTT_MS / 2;
  min = Infinity;
  hasSample = false;

  reset(): void {
    this.latest = 0;
    this.smoothed = INITIAL_RTT_MS;
    this.variance = INITIAL_RTT_MS / 2;
    this.min = Infinity;
    this.hasSample = false;
  }

  update(sample: number, ackDelay: number): void {
    this.latest = sample;
    if (sample < this.min) this.min = sample;
    if (!this.hasSample) {
      this.smoothed = sample;
      this.variance = sample / 2;
      this.hasSample = true;
      return;
    }
    // ack delay is subtracted only when it does not push the sample below min_rtt
    let adjusted = sample;
    if (sample >= this.min + ackDelay) adjusted = sample - ackDelay;
    this.variance = 0.75 * this.variance + 0.25 * Math.abs(this.smoothed - adjusted);
    this.smoothed = 0.875 * this.smoothed + 0.125 * adjusted;
  }

  /** the larger of the latest and smoothed RTT: what loss detection waits for (RFC 9002 §6.1.2) */
  get lossRtt(): number {
    return Math.max(this.latest, this.smoothed);
  }

  /** PTO before backoff: srtt + max(4·rttvar, granularity) + the peer's max ACK delay */
  ptoBase(maxAckDelayMs: number): number {
    return this.smoothed + Math.max(4 * this.variance, GRANULARITY_MS) + maxAckDelayMs;
  }
}
