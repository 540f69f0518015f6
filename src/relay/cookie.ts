// Stateless registration cookies (return routability + freshness) and the bounded
// record of cookies already spent (replay protection).
//
// cookie (24 bytes) = time u32 BE (whole seconds since the relay started) | random (4)
//                     | MAC (16) = BLAKE2s-128(key = relay secret, time | random | source)
// `source` is "u<address>|<port>" for UDP (so a REGISTER must come from the address the
// CHALLENGE went to) and "w<connection id>" for a WebSocket connection.
// A cookie is accepted for `lifetimeS` seconds and at most once: redeem() spends it on
// its first use whatever the handshake that follows does, so a valid cookie cannot carry
// more than one DH (docs/protocol/relay.md, "Single use").
import { blake2s } from '@noble/hashes/blake2.js';
import { timingSafeEqual, randomBytes } from 'node:crypto';
import { COOKIE_SIZE } from './wire.js';

export type CookieCheck = 'ok' | 'bad_cookie' | 'stale_cookie' | 'replay';

/** The MAC secret and time origin; workers of one relay share them (cluster.ts) so a
 *  cookie issued by one verifies in another. `epochMs` is absolute (timeOrigin-based). */
export interface CookieSecret { secret: Uint8Array; epochMs: number }

export function newCookieSecret(): CookieSecret {
  return { secret: new Uint8Array(randomBytes(32)), epochMs: performance.timeOrigin + performance.now() };
}

export class CookieJar {
  private readonly secret: Uint8Array;
  /** the shared epoch on this process's performance.now() scale */
  private readonly epoch: number;
  /** spent cookies (MAC as latin1) -> relay second when they stop being valid anyway */
  private readonly spent = new Map<string, number>();

  constructor(private readonly lifetimeS = 10, private readonly maxSpent = 500_000, shared: CookieSecret = newCookieSecret()) {
    this.secret = shared.secret;
    this.epoch = shared.epochMs - performance.timeOrigin;
  }

  private seconds(now: number): number {
    return Math.floor((now - this.epoch) / 1000);
  }

  private mac(time: Uint8Array, rand: Uint8Array, source: string): Uint8Array {
    const src = new TextEncoder().encode(source);
    const input = new Uint8Array(8 + src.length);
    input.set(time, 0);
    input.set(rand, 4);
    input.set(src, 8);
    return blake2s(input, { key: this.secret, dkLen: 16 });
  }

  issue(source: string, now = performance.now()): Uint8Array {
    const c = new Uint8Array(COOKIE_SIZE);
    const t = this.seconds(now);
    c[0] = t >>> 24; c[1] = (t >>> 16) & 0xff; c[2] = (t >>> 8) & 0xff; c[3] = t & 0xff;
    c.set(randomBytes(4), 4);
    c.set(this.mac(c.subarray(0, 4), c.subarray(4, 8), source), 8);
    return c;
  }

  /**
   * Cheap check before any DH: MAC, age, not spent; an 'ok' cookie is spent by this call.
   * The record of spent cookies is bounded: when it is full of live cookies (a flood) the
   * oldest is forgotten, and the handshake budget that follows still bounds the DH rate.
   */
  redeem(cookie: Uint8Array, source: string, now = performance.now()): CookieCheck {
    if (cookie.length !== COOKIE_SIZE) return 'bad_cookie';
    // a spent cookie first: a replay flood then costs a Map lookup, not a MAC (the spent
    // record holds only MACs that verified, so this cannot refuse anyone else's cookie)
    const id = Buffer.from(cookie.buffer, cookie.byteOffset + 8, 16).toString('latin1');
    if (this.spent.has(id)) return 'replay';
    const want = this.mac(cookie.subarray(0, 4), cookie.subarray(4, 8), source);
    if (!timingSafeEqual(want, cookie.subarray(8, 24))) return 'bad_cookie';
    const t = ((cookie[0]! << 24) | (cookie[1]! << 16) | (cookie[2]! << 8) | cookie[3]!) >>> 0;
    const age = this.seconds(now) - t;
    if (age < 0 || age > this.lifetimeS) return 'stale_cookie';
    if (this.spent.size >= this.maxSpent) this.prune(now);
    if (this.spent.size >= this.maxSpent) {
      const first = this.spent.keys().next();
      if (!first.done) this.spent.delete(first.value);
    }
    this.spent.set(id, this.seconds(now) + this.lifetimeS + 1);
    return 'ok';
  }

  /** Forget cookies that are too old to be accepted anyway. */
  prune(now = performance.now()): void {
    const s = this.seconds(now);
    for (const [k, exp] of this.spent) {
      if (exp >= s) break; // insertion order == expiry order
      this.spent.delete(k);
    }
  }

  get spentCount(): number { return this.spent.size; }
}
