// Deterministic network simulator: a virtual clock, a seeded PRNG, and one-way links with
// random or bursty (Gilbert-Elliott) loss, duplication, jitter (hence reordering), a
// bandwidth bottleneck with a finite FIFO queue, an MTU, blackhole periods, and path switches.

/** mulberry32: small, fast, seedable PRNG in [0, 1) */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface LinkConfig {
  /** one-way propagation delay, ms */
  delayMs: number;
  /** uniform extra delay in [0, jitterMs) per packet (reorders packets) */
  jitterMs?: number;
  /** independent loss probability */
  loss?: number;
  /** Gilbert-Elliott bursty loss: P(good→bad), P(bad→good), loss in bad state */
  burst?: { pGoodToBad: number; pBadToGood: number; lossInBad: number };
  /** duplication probability */
  duplicate?: number;
  /** bottleneck rate in bytes per ms (e.g. 12500 = 100 Mbit/s); absent = infinite */
  rateBytesPerMs?: number;
  /** bottleneck queue limit in bytes (drop-tail) */
  queueBytes?: number;
  /** largest datagram the link carries; larger ones are dropped (absent = any size) */
  mtu?: number;
}

/** A min-heap of timed events keyed by (time, seq) so equal times keep insertion order. */
export class EventQueue {
  private heap: Array<{ t: number; seq: number; fn: () => void }> = [];
  private seq = 0;
  get size(): number {
    return this.heap.length;
  }
  push(t: number, fn: () => void): void {
    const h = this.heap;
    h.push({ t, seq: this.seq++, fn });
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.less(h[i]!, h[p]!)) {
        [h[i], h[p]] = [h[p]!, h[i]!];
        i = p;
      } else break;
    }
  }
  peekTime(): number {
    return this.heap.length ? this.heap[0]!.t : Infinity;
  }
  pop(): { t: number; fn: () => void } | undefined {
    const h = this.heap;
    if (!h.length) return undefined;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
  private less(a: { t: number; seq: number }, b: { t: number; seq: number }): boolean {
    return a.t < b.t || (a.t === b.t && a.seq < b.seq);
  }
}

export interface LinkStats {
  sent: number;
  delivered: number;
  lost: number;
  queueDropped: number;
  duplicated: number;
  blackholed: number;
  /** dropped for being larger than the link's MTU */
  tooBig: number;
}

/** One direction of a path. */
export class Link {
  stats: LinkStats = { sent: 0, delivered: 0, lost: 0, queueDropped: 0, duplicated: 0, blackholed: 0, tooBig: 0 };
  private bad = false;
  private queueFreeAt = 0; // time the bottleneck finishes serialising what is queued
  private blackholeUntil = -Infinity;
  /** packets that would arrive at or after this time are dropped (the path died) */
  private cutAt = Infinity;

  constructor(
    public cfg: LinkConfig,
    private readonly rand: () => number,
    private readonly q: EventQueue,
  ) {}

  blackhole(from: number, until: number): void {
    this.q.push(from, () => {
      this.blackholeUntil = until;
    });
  }

  /** the path dies at `t`: packets still travelling then never arrive, later sends are dropped */
  cut(t: number): void {
    this.cutAt = Math.min(this.cutAt, t);
  }

  /** sends a packet at `now`; `deliver` runs at arrival time */
  send(now: number, pkt: Uint8Array, deliver: (pkt: Uint8Array, t: number) => void): void {
    this.stats.sent++;
    if (now < this.blackholeUntil || now >= this.cutAt) {
      this.stats.blackholed++;
      return;
    }
    const c = this.cfg;
    if (c.mtu !== undefined && pkt.length > c.mtu) {
      this.stats.tooBig++;
      return;
    }
    if (c.burst) {
      this.bad = this.bad ? this.rand() >= c.burst.pBadToGood : this.rand() < c.burst.pGoodToBad;
      if (this.bad && this.rand() < c.burst.lossInBad) {
        this.stats.lost++;
        return;
      }
    }
    if (c.loss && this.rand() < c.loss) {
      this.stats.lost++;
      return;
    }
    let depart = now;
    if (c.rateBytesPerMs) {
      const start = Math.max(now, this.queueFreeAt);
      const queued = (start - now) * c.rateBytesPerMs;
      if (c.queueBytes !== undefined && queued + pkt.length > c.queueBytes) {
        this.stats.queueDropped++;
        return;
      }
      this.queueFreeAt = start + pkt.length / c.rateBytesPerMs;
      depart = this.queueFreeAt;
    }
    const copies = c.duplicate && this.rand() < c.duplicate ? 2 : 1;
    if (copies === 2) this.stats.duplicated++;
    for (let i = 0; i < copies; i++) {
      const jitter = c.jitterMs ? this.rand() * c.jitterMs : 0;
      const at = depart + c.delayMs + jitter;
      const copy = pkt.slice();
      this.q.push(at, () => {
        if (at >= this.cutAt) {
          this.stats.blackholed++;
          return;
        }
        this.stats.delivered++;
        deliver(copy, at);
      });
    }
  }
}
