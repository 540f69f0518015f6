// RTT estimation (RFC 9002 §5) and NewReno congestion control with pacing (RFC 9002 §7).
// Pure state, explicit clock (ms).

export const GRANULARITY_MS = 1;
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
}

export class NewReno {
  cwnd: number;
  ssthresh = Infinity;
  bytesInFlight = 0;
  recoveryStart = -Infinity; // send time of the packet that started the recovery period
  private nextSendTime = 0;
  /**
   * The window before the current recovery episode, and how many of the episode's lost
   * packets have not (yet) turned out to be spurious. When all of them were only reordered,
   * the reduction is undone (like TCP's undo, RFC 4015 in spirit).
   */
  private undo: { cwnd: number; ssthresh: number; pending: number; episode: number } | null = null;
  /** numbers the recovery episodes, so a late spurious loss only undoes its own episode */
  episode = 0;

  constructor(
    readonly maxDatagram: number,
    readonly initialWindowPackets = 10,
  ) {
    this.cwnd = this.initialWindow;
  }

  get initialWindow(): number {
    return Math.max(this.initialWindowPackets * this.maxDatagram, 14720);
  }
  get minWindow(): number {
    return 2 * this.maxDatagram;
  }

  reset(): void {
    this.cwnd = this.initialWindow;
    this.ssthresh = Infinity;
    this.recoveryStart = -Infinity;
    this.nextSendTime = 0;
    this.undo = null;
  }

  canSend(bytes: number): boolean {
    return this.bytesInFlight + bytes <= this.cwnd;
  }

  onSent(bytes: number, now: number, srtt: number): void {
    this.bytesInFlight += bytes;
    // pacing: spread a cwnd over srtt at 1.25x the window rate (RFC 9002 §7.7)
    const rate = (1.25 * this.cwnd) / Math.max(srtt, GRANULARITY_MS);
    const interval = bytes / rate;
    this.nextSendTime = Math.max(this.nextSendTime, now - 10 * interval) + interval; // allows a burst of ~10 packets
  }

  /** earliest time the pacer lets the next packet go */
  pacingTime(): number {
    return this.nextSendTime;
  }

  onAcked(bytes: number, sentTime: number, appLimited: boolean): void {
    this.bytesInFlight -= bytes;
    if (sentTime <= this.recoveryStart || appLimited) return;
    if (this.cwnd < this.ssthresh) this.cwnd += bytes;
    else this.cwnd += (this.maxDatagram * bytes) / this.cwnd;
  }

  onRemovedNoCongestion(bytes: number): void {
    this.bytesInFlight -= bytes;
  }

  /**
   * `lost` packets (the latest sent at `sentTime`) were declared lost at `now`; returns the
   * number of the recovery episode they belong to
   */
  onCongestion(sentTime: number, now: number, lost = 1): number {
    if (sentTime <= this.recoveryStart) {
      if (this.undo) this.undo.pending += lost;
      return this.episode;
    }
    this.episode++;
    this.undo = { cwnd: this.cwnd, ssthresh: this.ssthresh, pending: lost, episode: this.episode };
    this.recoveryStart = now;
    this.ssthresh = Math.max(this.cwnd / 2, this.minWindow);
    this.cwnd = this.ssthresh;
    return this.episode;
  }

  onPersistentCongestion(): void {
    this.cwnd = this.minWindow;
    this.recoveryStart = -Infinity;
    this.undo = null;
  }

  /** a packet declared lost in recovery episode `episode` was acknowledged after all */
  onSpuriousLoss(episode: number): void {
    if (!this.undo || this.undo.episode !== episode) return;
    if (--this.undo.pending > 0) return;
    this.cwnd = Math.max(this.cwnd, this.undo.cwnd);
    this.ssthresh = this.undo.ssthresh;
    this.recoveryStart = -Infinity;
    this.undo = null;
  }
}
