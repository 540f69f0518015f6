// NewReno congestion control (RFC 9002 §7) with undo of a recovery episode whose every loss
// turned out spurious. Tracks bytes in flight and the window; pacing is pacer.ts, RTT rtt.ts.
// Pure state, explicit clock (ms).

/** RFC 9002 kInitialWindow: 10 packets, at least 14720 bytes */
const INITIAL_WINDOW_PACKETS = 10;
const INITIAL_WINDOW_MIN_BYTES = 14720;
/** RFC 9002 kMinimumWindow: 2 packets */
const MIN_WINDOW_PACKETS = 2;

export class NewReno {
  cwnd: number;
  ssthresh = Infinity;
  bytesInFlight = 0;
  /** send time of the packet that started the recovery period */
  recoveryStart = -Infinity;
  /**
   * The window before the current recovery episode, and how many of the episode's lost
   * packets have not (yet) turned out to be spurious. When all of them were only reordered,
   * the reduction is undone (like TCP's undo, RFC 4015 in spirit).
   */
  private undo: { cwnd: number; ssthresh: number; pending: number; episode: number } | null = null;
  /** numbers the recovery episodes, so a late spurious loss only undoes its own episode */
  episode = 0;

  constructor(public maxDatagram: number) {
    this.cwnd = this.initialWindow;
  }

  get initialWindow(): number {
    return Math.max(INITIAL_WINDOW_PACKETS * this.maxDatagram, INITIAL_WINDOW_MIN_BYTES);
  }
  get minWindow(): number {
    return MIN_WINDOW_PACKETS * this.maxDatagram;
  }

  reset(): void {
    this.cwnd = this.initialWindow;
    this.ssthresh = Infinity;
    this.recoveryStart = -Infinity;
    this.undo = null;
  }

  /** bytes the window has room for now */
  get available(): number {
    return this.cwnd - this.bytesInFlight;
  }

  onSent(bytes: number): void {
    this.bytesInFlight += bytes;
  }

  onAcked(bytes: number, sentTime: number): void {
    this.bytesInFlight -= bytes;
    if (sentTime <= this.recoveryStart) return;
    if (this.cwnd < this.ssthresh) this.cwnd += bytes;
    else this.cwnd += (this.maxDatagram * bytes) / this.cwnd;
  }

  /** a packet left the window without a congestion signal (path change, peer restart) */
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
