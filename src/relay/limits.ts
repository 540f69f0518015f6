// Rate limits of the relay: token buckets, and a bounded table of per-source-address
// state (handshake, STUN and forwarding budgets, HTTP connection counts).
//
// A bucket is two numbers mutated in place (no allocation on the forwarding path). The
// source table never grows past `maxSources`: once full, every new address shares one
// overflow entry, so spraying source addresses buys an attacker one shared budget, not
// memory.

export interface Bucket { tokens: number; at: number }

export interface Rate {
  /** tokens per second; 0 = unlimited */
  perS: number;
  burst: number;
}

export const newBucket = (r: Rate, now: number): Bucket => ({ tokens: r.burst, at: now });

/** Take `n` tokens (default one) if there are that many. Refills lazily from the time since the last refill. */
export function take(b: Bucket, r: Rate, now: number, n = 1): boolean {
  if (r.perS === 0) return true;
  if (b.tokens < n) {
    b.tokens = Math.min(r.burst, b.tokens + ((now - b.at) * r.perS) / 1000);
    b.at = now;
    if (b.tokens < n) return false;
  }
  b.tokens -= n;
  return true;
}

/**
 * The forwarding budgets count packets of at most this many bytes: the largest SEND frame
 * before frames grew to 64 KiB (41 header + 1400 payload). A larger frame costs one token
 * per started FRAME_COST_BYTES, so a budget of R packets/s still bounds an agent to
 * R × 1441 bytes/s however large its frames are (a burst smaller than a frame's cost never
 * lets that frame through: the agent's path MTU probes then settle on smaller packets).
 */
export const FRAME_COST_BYTES = 1441;

/** The tokens a forwarded frame of `bytes` costs each budget (at least 1); integer math, no allocation. */
export function frameCost(bytes: number): number {
  return bytes <= FRAME_COST_BYTES ? 1 : Math.ceil(bytes / FRAME_COST_BYTES);
}

/** Would this bucket be full by now (nothing left to remember)? */
export function isFull(b: Bucket, r: Rate, now: number): boolean {
  return r.perS === 0 || b.tokens + ((now - b.at) * r.perS) / 1000 >= r.burst;
}

export interface SourceRates { handshake: Rate; stun: Rate; forward: Rate }

/** What the relay remembers about one source IP address. */
export interface SourceState {
  handshake: Bucket;
  stun: Bucket;
  forward: Bucket;
  /** open HTTP/WebSocket connections from this address */
  httpConnections: number;
  /** registered agents behind this address (UDP and WebSocket) */
  agents: number;
}

export class SourceTable {
  private readonly m = new Map<string, SourceState>();
  private readonly overflow: SourceState;

  constructor(readonly rates: SourceRates, private readonly maxSources: number, now = performance.now()) {
    this.overflow = this.fresh(now);
  }

  private fresh(now: number): SourceState {
    return {
      handshake: newBucket(this.rates.handshake, now), stun: newBucket(this.rates.stun, now),
      forward: newBucket(this.rates.forward, now), httpConnections: 0, agents: 0,
    };
  }

  /** The state of `address` (created on first use; the shared overflow entry when full). */
  get(address: string, now = performance.now()): SourceState {
    let s = this.m.get(address);
    if (s) return s;
    if (this.m.size >= this.maxSources) return this.overflow;
    s = this.fresh(now);
    this.m.set(address, s);
    return s;
  }

  get size(): number { return this.m.size; }

  /** Forget addresses with nothing to remember: no connections, no agents, full buckets. */
  sweep(now = performance.now()): void {
    for (const [a, s] of this.m) {
      if (s.httpConnections === 0 && s.agents === 0 && isFull(s.handshake, this.rates.handshake, now)
        && isFull(s.stun, this.rates.stun, now) && isFull(s.forward, this.rates.forward, now)) this.m.delete(a);
    }
  }
}

/**
 * The address a budget is charged to: the IPv4 address, or the /64 prefix of an IPv6
 * address (one host commonly holds a whole /64, so per-address IPv6 budgets would be
 * free to multiply).
 */
export function sourceKey(address: string): string {
  if (!address.includes(':')) return address;
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (v4) return v4[1]!;
  const [head, tail = ''] = address.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = address.includes('::') ? [...h, ...Array<string>(Math.max(0, 8 - h.length - t.length)).fill('0'), ...t] : h;
  return groups.slice(0, 4).map((g) => g.toLowerCase().replace(/^0+(?=.)/, '')).join(':') + '::/64';
}
