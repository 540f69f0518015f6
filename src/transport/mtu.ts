// Datagram packetization layer path MTU discovery (DPLPMTUD, RFC 8899) for the transport:
// the owner says how large a packet the path could carry at most (e.g. ~65000 on loopback
// or a LAN, ~1400 on the Internet); the connection starts at the base size and probes
// larger sizes with PING + PADDING packets (binary search), raises its packet size when a
// probe is acknowledged, and falls back to the base on a path change or when full-size
// packets keep getting lost while smaller ones get through (a black hole). Probes are never
// a congestion signal and are not re-sent. Pure state: the connection sends the probes.

/** RFC 8899 MAX_PROBES: a size is given up after this many unacknowledged probes */
export const MAX_PROBES = 3;
/** the search stops when the interval left is smaller than this (bytes) */
export const SEARCH_DONE_BYTES = 32;
/**
 * Black hole: this many packets larger than the base lost, each sent after the last large
 * packet that was acknowledged (so it is not a burst of congestion losses that later large
 * packets survived), send the size back to the base.
 */
export const BLACK_HOLE_LOSSES = 3;

interface Probe {
  pn: number;
  size: number;
  deadline: number;
}

export class MtuDiscovery {
  /** the confirmed packet size in use */
  current: number;
  /** the largest size the owner said the path could carry */
  private pathMax: number;
  /** search interval: `lo` works, sizes above `hi` do not */
  private lo: number;
  private hi: number;
  private attempts = 0;
  private probe: Probe | null = null;
  private largestAckedLargePn = -1;
  private largeLosses = 0;
  probesSent = 0;
  blackHoles = 0;

  constructor(readonly base: number) {
    this.current = base;
    this.pathMax = base;
    this.lo = base;
    this.hi = base;
  }

  /** the owner's bound on the path; the search restarts within it */
  setPathMax(n: number): void {
    this.pathMax = Math.max(this.base, Math.floor(n));
    if (this.current > this.pathMax) this.current = this.pathMax;
    this.restart(this.pathMax);
  }

  get searching(): boolean {
    return this.hi - this.lo >= SEARCH_DONE_BYTES;
  }

  /** the size of a probe to send now (0: none) */
  nextProbe(): number {
    if (this.probe || !this.searching) return 0;
    return this.lo + Math.ceil((this.hi - this.lo) / 2);
  }

  onProbeSent(pn: number, size: number, deadline: number): void {
    this.probe = { pn, size, deadline };
    this.probesSent++;
  }

  isProbe(pn: number): boolean {
    return this.probe !== null && this.probe.pn === pn;
  }

  /** when an outstanding probe is given up (Infinity: none) */
  nextDeadline(): number {
    return this.probe ? this.probe.deadline : Infinity;
  }

  /** the outstanding probe's pn when it timed out at `now` (then it counts as lost), else -1 */
  expire(now: number): number {
    if (!this.probe || this.probe.deadline > now) return -1;
    const pn = this.probe.pn;
    this.onProbeLost();
    return pn;
  }

  /** returns true when the packet size changed */
  onProbeAcked(): boolean {
    if (!this.probe) return false;
    this.lo = this.probe.size;
    this.current = this.probe.size;
    this.largestAckedLargePn = Math.max(this.largestAckedLargePn, this.probe.pn);
    this.probe = null;
    this.attempts = 0;
    return true;
  }

  onProbeLost(): void {
    if (!this.probe) return;
    const size = this.probe.size;
    this.probe = null;
    if (++this.attempts >= MAX_PROBES) {
      this.hi = size - 1;
      this.attempts = 0;
    }
  }

  /** a packet that was not a probe was acknowledged */
  onPacketAcked(pn: number, size: number): void {
    if (size <= this.base) return;
    if (pn > this.largestAckedLargePn) this.largestAckedLargePn = pn;
    this.largeLosses = 0;
  }

  /** a packet that was not a probe was lost; returns true when the size fell back to the base */
  onPacketLost(pn: number, size: number): boolean {
    if (size <= this.base || pn < this.largestAckedLargePn) return false;
    if (++this.largeLosses < BLACK_HOLE_LOSSES) return false;
    this.blackHoles++;
    // what worked until now does not any more: search again below it
    const failed = this.current;
    this.current = this.base;
    this.restart(Math.max(this.base, failed - 1));
    return true;
  }

  /** a new path: back to the base, search again up to the owner's bound */
  pathChanged(): void {
    this.current = this.base;
    this.restart(this.pathMax);
  }

  private restart(hi: number): void {
    this.lo = this.current;
    this.hi = Math.max(this.current, hi);
    this.attempts = 0;
    this.probe = null;
    this.largeLosses = 0;
    this.largestAckedLargePn = -1;
  }
}
