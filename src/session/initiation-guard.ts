// What an initiation must pass before the responder spends any Diffie-Hellman on it
// (issue #12, row 7), in this order, each step cheaper than what it protects:
//
//   1. exact copy     isCopy(): its ephemeral key belongs to an initiation that already
//                     authenticated (remember()): a replay, dropped with one Set lookup —
//                     before mac1, since no hash can make such a datagram worth reading
//      mac1           (the manager: one hash; the sender knows our public key)
//   2. load           admit(): the rate of initiations reaching this step, over
//                     UNDER_LOAD_INITIATIONS_PER_S, puts the responder under load for a second
//   3. under load     mac2 must be made with the cookie of the datagram's source; if not, the
//                     source gets a cookie reply (no DH) — a spoofed source never sees it.
//                     Then the source's own budget (a token bucket: only sources proven by a
//                     cookie are charged, so a spoofer cannot spend a victim's budget)
//   4. global budget  all initiations that reach the DH stage, together
//
// Not under load, no per-source budget applies: fewer than UNDER_LOAD_INITIATIONS_PER_S
// arrive, so the total is already bounded, and a spoofer could otherwise drain a real
// peer's budget. Without a `source` (the caller maps no endpoints), steps 3's cookie and
// per-source budget are skipped and the global budget alone bounds the work.
//
// After the Noise read the manager also checks the timestamp; with the static-static DH
// cached per peer, a replayed initiation that is not an exact copy of a recent one (e.g.
// an old one) costs one DH (es) before that check refuses it.
import {
  GLOBAL_INITIATION_BURST, GLOBAL_INITIATIONS_PER_S, MAX_TRACKED_SOURCES, RECENT_INITIATIONS,
  SOURCE_INITIATION_BURST, SOURCE_INITIATIONS_PER_S, UNDER_LOAD_HOLD_MS, UNDER_LOAD_INITIATIONS_PER_S,
} from './constants.js';
import { CookieChecker } from './cookie.js';
import { SourceBuckets, TokenBucket, type Rate } from './rate-limit.js';
import { RecentSet } from './recent-set.js';
import { INITIATION_LEN, MAC_LEN, type Initiation } from './wire.js';

export interface InitiationLimits {
  underLoadPerSecond: number;
  underLoadHoldMs: number;
  perSource: Rate;
  maxSources: number;
  global: Rate;
  recentInitiations: number;
}

export const DEFAULT_INITIATION_LIMITS: InitiationLimits = {
  underLoadPerSecond: UNDER_LOAD_INITIATIONS_PER_S,
  underLoadHoldMs: UNDER_LOAD_HOLD_MS,
  perSource: { perSecond: SOURCE_INITIATIONS_PER_S, burst: SOURCE_INITIATION_BURST },
  maxSources: MAX_TRACKED_SOURCES,
  global: { perSecond: GLOBAL_INITIATIONS_PER_S, burst: GLOBAL_INITIATION_BURST },
  recentInitiations: RECENT_INITIATIONS,
};

export type Admission =
  | { admit: true }
  /** `cookieReply`: send it back to the initiation's source (the reason is then 'cookie_sent') */
  | { admit: false; reason: 'cookie_sent' | 'source_rate_limited' | 'handshake_budget_exhausted'; cookieReply?: Uint8Array };

const MAC2_AT = INITIATION_LEN - MAC_LEN;
const EPHEMERAL_LEN = 32;
const ADMIT: Admission = { admit: true };

export class InitiationGuard {
  private readonly cookies: CookieChecker;
  private readonly recent: RecentSet;
  private readonly load: TokenBucket;
  private underLoadUntil = -Infinity;
  private readonly sources: SourceBuckets;
  private readonly global: TokenBucket;

  constructor(ownStaticPublic: Uint8Array, now: number, readonly limits: InitiationLimits = DEFAULT_INITIATION_LIMITS) {
    this.cookies = new CookieChecker(ownStaticPublic);
    this.recent = new RecentSet(limits.recentInitiations);
    this.load = new TokenBucket({ perSecond: limits.underLoadPerSecond, burst: limits.underLoadPerSecond }, now);
    this.sources = new SourceBuckets(limits.perSource, limits.maxSources);
    this.global = new TokenBucket(limits.global, now);
  }

  isUnderLoad(now: number): boolean { return now < this.underLoadUntil; }

  /** Step 1: an exact copy (same ephemeral key) of an initiation that authenticated. */
  isCopy(msg: Initiation): boolean {
    return this.recent.has(ephemeralId(msg));
  }

  /**
   * Steps 2–4 for an initiation (`raw`: its 148 bytes, mac1 verified) that came from
   * `source` (undefined: the caller cannot name sources). No DH in here.
   */
  admit(raw: Uint8Array, msg: Initiation, source: Uint8Array | undefined, now: number): Admission {
    if (!this.load.take(now)) this.underLoadUntil = now + this.limits.underLoadHoldMs;
    if (source && this.isUnderLoad(now)) {
      if (!this.cookies.verifyMac2(source, raw.subarray(0, MAC2_AT), msg.mac2, now)) {
        return { admit: false, reason: 'cookie_sent', cookieReply: this.cookies.makeReply(msg.senderIndex, msg.mac1, source, now) };
      }
      if (!this.sources.take(latin1(source), now)) return { admit: false, reason: 'source_rate_limited' };
    }
    if (!this.global.take(now)) return { admit: false, reason: 'handshake_budget_exhausted' };
    return ADMIT;
  }

  /** The initiation authenticated (Noise message 1 read): any exact copy is dropped from now on. */
  remember(msg: Initiation): void {
    this.recent.add(ephemeralId(msg));
  }

  destroy(): void {
    this.cookies.destroy();
  }
}

function latin1(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
}

function ephemeralId(msg: Initiation): string {
  return latin1(msg.noise.subarray(0, EPHEMERAL_LEN));
}
