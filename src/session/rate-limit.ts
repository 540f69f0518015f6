// Token buckets for handshake work: one per source in a bounded table, and one global.
// Time is the caller's monotonic clock in ms (sans-I/O: tests drive it).

export interface Rate {
  /** tokens added per second */
  perSecond: number;
  /** bucket size: how many may pass at once after a quiet period */
  burst: number;
}

export class TokenBucket {
  private tokens: number;
  private refilledAt: number;

  constructor(private readonly rate: Rate, now: number) {
    this.tokens = rate.burst;
    this.refilledAt = now;
  }

  /** Takes one token if there is one. */
  take(now: number): boolean {
    const elapsed = Math.max(0, now - this.refilledAt);
    this.tokens = Math.min(this.rate.burst, this.tokens + (elapsed * this.rate.perSecond) / 1000);
    this.refilledAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/**
 * One bucket per source key, at most `maxSources` of them: when a new source arrives at a
 * full table the least recently used bucket is forgotten. Forgetting only ever restores a
 * full bucket to that source, so the table's bound can make the limit more lenient, never
 * lock anyone out; the global bucket is what bounds the total.
 */
export class SourceBuckets {
  /** insertion order = use order (a used entry is re-inserted at the end) */
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(private readonly rate: Rate, private readonly maxSources: number) {}

  get size(): number { return this.buckets.size; }

  take(source: string, now: number): boolean {
    let bucket = this.buckets.get(source);
    if (bucket) {
      this.buckets.delete(source);
    } else {
      if (this.buckets.size >= this.maxSources) this.buckets.delete(this.buckets.keys().next().value!);
      bucket = new TokenBucket(this.rate, now);
    }
    this.buckets.set(source, bucket);
    return bucket.take(now);
  }
}
