// Connecting a peer's stream to its local target (MPyC's own listener), which may not be
// listening yet: when all parties start together, the first bytes of a peer often arrive
// before the local MPyC has opened its port, and every millisecond of waiting here delays
// the computation's first round. One probe per target (a loopback connect, refused at once
// while nobody listens) every PROBE_FAST_MS for the first second, then backing off to
// MPyC's own retry interval, so a party that starts late never waits longer for its
// agent than it would for a direct MPyC connection (the highest-index party only listens,
// so nothing kicks its agent: the probe is what finds it); every
// stream waiting for that target is served as soon as it listens, one connection each. And
// when the local MPyC connects to this agent (it has started, and MPyC opens its listener
// before it dials out) every waiting target is probed at once.
import { connect, type Socket } from 'node:net';
import type { Logger } from 'pino';

/** probe interval while a target has been waited for less than PROBE_FAST_FOR_MS */
export const PROBE_FAST_MS = 2;
export const PROBE_FAST_FOR_MS = 1_000;
/**
 * then the interval doubles up to this: MPyC's own connect retry (100 ms), at 10 probes a
 * second (~0.1 % of a core) for a party that starts minutes late
 */
export const PROBE_SLOW_MAX_MS = 100;

export interface LocalTarget { host: string; port: number }

/** The probe schedule (the defaults above; tests stretch it) */
export interface ProbeSchedule { fastMs: number; fastForMs: number; slowMaxMs: number }
export const DEFAULT_PROBE_SCHEDULE: ProbeSchedule = { fastMs: PROBE_FAST_MS, fastForMs: PROBE_FAST_FOR_MS, slowMaxMs: PROBE_SLOW_MAX_MS };

/** The wait before the next probe of a target that has been waited for `waitedMs`, after a wait of `lastDelayMs`. */
export function nextProbeDelay(schedule: ProbeSchedule, waitedMs: number, lastDelayMs: number): number {
  return waitedMs < schedule.fastForMs ? lastDelayMs : Math.min(schedule.slowMaxMs, lastDelayMs * 2);
}

interface Waiter { connected: (s: Socket) => void; cancelled: boolean }

interface Target {
  at: LocalTarget;
  queue: Waiter[];
  since: number;
  attempts: number;
  delayMs: number;
  timer?: NodeJS.Timeout;
  /** a connect in flight */
  probing: boolean;
}

export class LocalConnector {
  /** by `host port`: at most one per local target the agent allows (bounded by its configuration) */
  private readonly targets = new Map<string, Target>();
  private stopped = false;

  constructor(private readonly logger: Logger, private readonly schedule: ProbeSchedule = DEFAULT_PROBE_SCHEDULE) {}

  /**
   * Connects to `at`, retrying until it listens; `connected` gets the socket (connected,
   * no-delay). Returns the cancel function (after which `connected` is never called).
   */
  connect(at: LocalTarget, connected: (s: Socket) => void): () => void {
    const w: Waiter = { connected, cancelled: false };
    const key = `${at.host} ${at.port}`;
    let t = this.targets.get(key);
    if (!t) {
      t = { at, queue: [], since: performance.now(), attempts: 0, delayMs: this.schedule.fastMs, probing: false };
      this.targets.set(key, t);
    }
    t.queue.push(w);
    if (!t.probing && !t.timer) this.attempt(key, t);
    return () => { w.cancelled = true; this.prune(key, t!); };
  }

  /** A local program connected to this agent: listeners it opened before dialling out are up now. */
  kick(): void {
    for (const [key, t] of this.targets) {
      if (t.probing || !t.timer) continue;
      clearTimeout(t.timer);
      t.timer = undefined;
      this.attempt(key, t);
    }
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.targets.values()) if (t.timer) clearTimeout(t.timer);
    this.targets.clear();
  }

  private prune(key: string, t: Target): void {
    t.queue = t.queue.filter((w) => !w.cancelled);
    if (t.queue.length > 0 || this.targets.get(key) !== t) return;
    if (t.timer) clearTimeout(t.timer);
    this.targets.delete(key);
  }

  private attempt(key: string, t: Target): void {
    if (this.stopped) return;
    t.probing = true;
    t.attempts++;
    const s = connect({ host: t.at.host, port: t.at.port, allowHalfOpen: true });
    s.setNoDelay(true);
    const onError = (err: NodeJS.ErrnoException): void => {
      s.destroy();
      t.probing = false;
      this.prune(key, t);
      if (this.stopped || this.targets.get(key) !== t) return;
      if (t.attempts === 1 || t.attempts % 500 === 0) {
        this.logger.info({ port: t.at.port, code: err.code, attempts: t.attempts, waiting: t.queue.length }, 'waiting for the local listener');
      }
      t.delayMs = nextProbeDelay(this.schedule, performance.now() - t.since, t.delayMs);
      t.timer = setTimeout(() => { t.timer = undefined; this.attempt(key, t); }, t.delayMs);
    };
    s.once('error', onError);
    s.once('connect', () => {
      s.off('error', onError);
      t.probing = false;
      const w = t.queue.find((x) => !x.cancelled);
      this.prune(key, t);
      if (!w || this.stopped) { s.destroy(); return; }
      t.queue.splice(t.queue.indexOf(w), 1);
      this.prune(key, t);
      // the target listens: every other waiting stream connects now, one by one
      if (this.targets.get(key) === t) this.attempt(key, t);
      w.connected(s);
    });
  }
}
