// Flow control: the credit we grant (ReceiveWindow, auto-tuned) and the credit the peer
// granted us (SendCredit), for one stream or for the whole connection. Credits are
// absolute byte counts (RFC 9000 §4 style: MAX_DATA / MAX_STREAM_DATA carry the limit).

/**
 * Credit we grant the peer. The window re-advertises `consumed + window` once less than half
 * of it remains, and doubles (up to `maxWindow`) when that happens within 2 RTT of the last
 * update: the window, not the path, was limiting throughput (auto-tuning).
 */
export class ReceiveWindow {
  /** the current window size (grows by auto-tuning) */
  window: number;
  /** the limit the peer was told it may send up to */
  advertised: number;
  /** bytes the application has read */
  consumed = 0;
  /** the highest byte count the peer has used (stream: highest offset; connection: the sum) */
  received = 0;
  private lastUpdate = -Infinity;

  constructor(
    initial: number,
    readonly maxWindow: number,
  ) {
    this.window = initial;
    this.advertised = initial;
  }

  /** the peer used credit up to `n` (absolute); false when that is beyond what we granted */
  receiveTo(n: number): boolean {
    if (n > this.received) this.received = n;
    return this.received <= this.advertised;
  }

  consume(n: number): void {
    this.consumed += n;
  }

  /**
   * Moves the advertised limit when less than half the window remains; returns true when a
   * new limit must be sent. `now` and `srtt` drive the auto-tuning.
   */
  update(now: number, srtt: number): boolean {
    if (this.advertised - this.consumed >= this.window / 2) return false;
    if (now - this.lastUpdate < 2 * srtt && this.window < this.maxWindow) {
      this.window = Math.min(this.maxWindow, this.window * 2);
    }
    this.lastUpdate = now;
    this.advertised = this.consumed + this.window;
    return true;
  }
}

/** Credit the peer granted us: we may send up to `limit` bytes. */
export class SendCredit {
  used = 0;
  constructor(public limit: number) {}

  get available(): number {
    return Math.max(0, this.limit - this.used);
  }

  /** a MAX_* frame arrived; true when it raised the limit (limits never go down) */
  raise(limit: number): boolean {
    if (limit <= this.limit) return false;
    this.limit = limit;
    return true;
  }
}
