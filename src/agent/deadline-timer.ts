// One timer for many sans-I/O cores: armed for the earliest of their nextDeadline()s, it
// runs the due work and re-arms. Callers say reschedule() when something may have moved a
// deadline EARLIER (a later one only makes the timer fire early, find nothing due and
// re-arm), so the data path never computes deadlines per packet.
export class DeadlineTimer {
  private timer?: NodeJS.Timeout;
  private armedAt = Infinity;
  private queued = false;
  private stopped = false;

  constructor(
    private readonly nextDeadline: () => number,
    /** runs whatever is due at `now` */
    private readonly onDue: (now: number) => void,
    private readonly clock: () => number = () => performance.now(),
  ) {}

  /** Re-arms after the current turn (coalesced: any number of calls per turn cost one computation). */
  reschedule(): void {
    if (this.queued || this.stopped) return;
    this.queued = true;
    queueMicrotask(() => {
      this.queued = false;
      this.arm(0);
    });
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Arms for the earliest deadline unless already armed earlier; `minDelayMs` guards against a busy loop. */
  private arm(minDelayMs: number): void {
    if (this.stopped) return;
    const t = this.nextDeadline();
    if (t >= this.armedAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.armedAt = t;
    if (t === Infinity) return;
    this.timer = setTimeout(() => this.fire(), Math.max(minDelayMs, Math.ceil(t - this.clock())));
    this.timer.unref();
  }

  private fire(): void {
    this.timer = undefined;
    this.armedAt = Infinity;
    if (this.stopped) return;
    // Node's timers count whole milliseconds of a loop clock that lags the real one, so a
    // timer can fire up to a millisecond before its deadline: then nothing is due yet,
    // and running the due work would only find that out (and leave the deadline to fire
    // once more); it waits for the next millisecond instead
    const now = this.clock();
    if (this.nextDeadline() <= now) this.onDue(now);
    this.arm(1);
  }
}
