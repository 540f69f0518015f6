// Path selection for one peer (sans-I/O: explicit `now`, actions returned to the caller).
//
// The relay path is always there as the fallback. Direct paths are found by probing every
// candidate address of the peer (what it told us inside the session, plus any address an
// authenticated packet of the peer came from) with authenticated PROBEs; a PROBE_ACK
// confirms a candidate. Rules (docs/protocol/paths.md):
//  - relay → direct: the first confirmed candidate; a candidate we fell back from must be
//    confirmed HOLD_DOWN_ACKS times in a row first (never flap on a lossy path);
//  - direct → better direct: a strictly preferred class (loopback > LAN > public); within
//    one class a clearly lower probe RTT (RTT_SWITCH_RATIO, with samples on both, so two
//    similar paths never flap); or when the active one has gone quiet (NAT rebinding);
//  - direct → relay: when nothing authenticated arrived over the direct path for SILENT_MS
//    although we kept sending heartbeats; then keep re-probing.
import { randomBytes } from 'node:crypto';
import { candidateKey, preference } from './candidates.js';
import type { Candidate, CandidateSource } from './inner.js';

/** heartbeat (probe) interval on an active direct path: keeps NAT mappings alive (< 25 s) and detects loss */
export const HEARTBEAT_MS = 1_000;
/** fall back to the relay after this long without an authenticated packet over the direct path */
export const SILENT_MS = 3_500;
/** probe rounds while no direct path: fast at first, then slower */
export const PROBE_FAST_MS = 200;
export const PROBE_SLOW_MS = 5_000;
/** fast probe rounds after new candidates or a fallback */
export const FAST_ROUNDS = 40;
/** consecutive acks a candidate needs after we fell back from it */
export const HOLD_DOWN_ACKS = 3;
/** candidates kept per peer */
export const MAX_REMOTE_CANDIDATES = 24;
/** a probe unanswered for this long counts as lost */
const PROBE_TIMEOUT_MS = 2_000;
/** a same-class candidate takes over only with a smoothed RTT below this fraction of the active one's… */
export const RTT_SWITCH_RATIO = 0.7;
/** …and at least this much lower (sub-millisecond differences are noise) */
export const RTT_SWITCH_MIN_MS = 1;
/** probe RTT samples a candidate needs before its RTT counts */
export const RTT_MIN_SAMPLES = 3;
/** weight of a new sample in the smoothed probe RTT (RFC 6298's alpha) */
const RTT_ALPHA = 1 / 8;

const NO_CHANGES: readonly PathChange[] = Object.freeze([]);

function directPath(c: Candidate, since: number): ActivePath {
  return c.via === undefined ? { kind: 'direct', address: c.address, port: c.port, since } : { kind: 'direct', address: c.address, port: c.port, via: c.via, since };
}

/** `via`: the birthday socket the direct path is reached from (absent: the main socket) */
export type ActivePath = { kind: 'relay' } | { kind: 'direct'; address: string; port: number; via?: number; since: number };

/** A probe's round trip, measured on the direct path it was sent on. */
export interface RttSample { address: string; port: number; rttMs: number }

export interface PathAction {
  type: 'probe';
  to: Candidate;
  id: Uint8Array;
}

export interface PathChange {
  from: ActivePath;
  to: ActivePath;
  reason: string;
}

interface RemoteCandidate {
  c: Candidate;
  key: string;
  pref: number;
  /** consecutive acknowledged probes */
  streak: number;
  /** acks needed before this candidate may become active */
  needAcks: number;
  learned: 'signalled' | 'observed';
  source: CandidateSource;
  /** smoothed probe RTT (undefined before the first ack) and the number of samples */
  srttMs?: number;
  samples: number;
}

export class PeerPaths {
  private readonly candidates = new Map<string, RemoteCandidate>();
  private readonly probes = new Map<string, { key: string; sentAt: number }>();
  private activePath: ActivePath = { kind: 'relay' };
  private lastDirectRecvAt = -Infinity;
  private nextProbeAt = Infinity;
  private fastRoundsLeft = FAST_ROUNDS;
  private nextHeartbeatAt = Infinity;
  private readonly changes: PathChange[] = [];
  private readonly rttSamples: RttSample[] = [];

  constructor(private readonly relayOnly: boolean) {}

  get active(): ActivePath { return this.activePath; }
  get candidateCount(): number { return this.candidates.size; }

  /** How the active direct path's address was found, and its smoothed probe RTT. */
  activeInfo(): { source: CandidateSource; rttMs?: number } | undefined {
    const a = this.activePath;
    if (a.kind !== 'direct') return undefined;
    const c = this.candidates.get(candidateKey(a));
    return c ? { source: c.source, rttMs: c.srttMs } : { source: 'observed' };
  }

  /** Candidates the peer signalled inside the session. */
  addSignalled(list: Candidate[], now: number): void {
    if (this.relayOnly) return;
    let added = false;
    for (const c of list) added = this.add(c, 'signalled') || added;
    if (added) this.speedUp(now);
  }

  /**
   * An authenticated packet of this peer arrived directly from `from`. Returns whether the
   * next deadline may have moved earlier (a new address to probe soon).
   */
  onDirectPacket(from: Candidate, now: number, source: CandidateSource = 'observed'): boolean {
    if (this.relayOnly) return false;
    const a = this.activePath;
    if (a.kind === 'direct' && a.address === from.address && a.port === from.port && a.via === from.via) {
      this.lastDirectRecvAt = now;
      return false;
    }
    const key = candidateKey(from);
    // a new address (peer-reflexive, or the peer's NAT rebound): probe it soon
    if (this.add({ ...from, source }, 'observed') || !this.candidates.get(key)?.streak) {
      if (a.kind === 'relay') this.speedUp(now);
      else this.nextProbeAt = Math.min(this.nextProbeAt, now + PROBE_FAST_MS);
      return true;
    }
    return false;
  }

  /** A PROBE_ACK came back. `from` is where it arrived from (direct only). */
  onProbeAck(id: Uint8Array, from: Candidate, now: number): void {
    const idKey = Buffer.from(id).toString('hex');
    const p = this.probes.get(idKey);
    if (!p) return;
    this.probes.delete(idKey);
    const cand = this.candidates.get(p.key);
    if (!cand) return;
    // the ack must come from the address probed (a symmetric NAT answers from elsewhere)
    if (candidateKey(from) !== p.key) return;
    const rtt = Math.max(0, now - p.sentAt);
    cand.srttMs = cand.srttMs === undefined ? rtt : cand.srttMs + RTT_ALPHA * (rtt - cand.srttMs);
    cand.samples++;
    this.rttSamples.push({ address: cand.c.address, port: cand.c.port, rttMs: rtt });
    if (this.rttSamples.length > 4 * MAX_REMOTE_CANDIDATES) this.rttSamples.shift();
    this.confirmed(cand, p.key, now);
  }

  /**
   * A path confirmed outside our own probes: an acknowledgement of a birthday probe
   * (birthday.ts), whose id only the attempt knows. `c` carries its source and socket.
   */
  confirmFound(c: Candidate, now: number): void {
    if (this.relayOnly) return;
    const key = candidateKey(c);
    this.add(c, 'observed');
    const cand = this.candidates.get(key);
    if (!cand) return;
    if (c.source) cand.source = c.source; // an address first seen as peer-reflexive, now explained
    this.confirmed(cand, key, now, `${c.source ?? 'found'} probe confirmed`);
  }

  /** Candidates reached from a birthday socket that was closed: gone (the active path too). */
  forgetVia(via: number, now: number): void {
    const a = this.activePath;
    if (a.kind === 'direct' && a.via === via) this.switchTo({ kind: 'relay' }, 'its birthday socket was closed', now);
    for (const [k, c] of this.candidates) if (c.c.via === via) this.candidates.delete(k);
  }

  /** One more acknowledgement of `cand`: the path rules decide whether it takes over. */
  private confirmed(cand: RemoteCandidate, key: string, now: number, why = 'probe confirmed'): void {
    cand.streak++;
    const a = this.activePath;
    if (a.kind === 'direct' && candidateKey(a) === key) {
      this.lastDirectRecvAt = now;
      return;
    }
    if (cand.streak < cand.needAcks) return;
    if (a.kind === 'relay') {
      this.switchTo(directPath(cand.c, now), why, now);
      return;
    }
    const activePref = preference(a.address);
    const quiet = now - this.lastDirectRecvAt > 1.5 * HEARTBEAT_MS;
    const reason = cand.pref > activePref ? 'preferred path confirmed'
      : quiet ? 'active path quiet, peer answers elsewhere'
        : cand.pref === activePref && this.clearlyFaster(cand, this.candidates.get(candidateKey(a))) ? 'lower RTT path confirmed'
          : undefined;
    if (reason) this.switchTo(directPath(cand.c, now), reason, now);
  }

  /** Hysteresis: both measured, and the candidate well below the active one (never both ways). */
  private clearlyFaster(cand: RemoteCandidate, active: RemoteCandidate | undefined): boolean {
    if (!active || active.srttMs === undefined || cand.srttMs === undefined) return false;
    if (cand.samples < RTT_MIN_SAMPLES || active.samples < RTT_MIN_SAMPLES) return false;
    return cand.srttMs < active.srttMs * RTT_SWITCH_RATIO && active.srttMs - cand.srttMs >= RTT_SWITCH_MIN_MS;
  }

  /** Probe RTT samples since the last call (for the RTT histogram: one observation per sample). */
  takeRttSamples(): RttSample[] {
    return this.rttSamples.splice(0);
  }

  /** Timer work: returns the probes to send now. */
  poll(now: number): PathAction[] {
    if (this.relayOnly) return [];
    const out: PathAction[] = [];
    for (const [id, p] of this.probes) {
      if (now - p.sentAt > PROBE_TIMEOUT_MS) {
        this.probes.delete(id);
        const c = this.candidates.get(p.key);
        if (c) c.streak = 0;
      }
    }
    const a = this.activePath;
    if (a.kind === 'direct' && now - Math.max(this.lastDirectRecvAt, a.since) > SILENT_MS) {
      const c = this.candidates.get(candidateKey(a));
      if (c) { c.needAcks = HOLD_DOWN_ACKS; c.streak = 0; }
      this.switchTo({ kind: 'relay' }, `no packet over the direct path for ${SILENT_MS} ms`, now);
      this.speedUp(now);
    }
    const act = this.activePath;
    if (act.kind === 'direct') {
      if (now >= this.nextHeartbeatAt) {
        this.nextHeartbeatAt = now + HEARTBEAT_MS;
        out.push(this.probe(act.via === undefined ? { address: act.address, port: act.port } : { address: act.address, port: act.port, via: act.via }, now));
      }
      const activeKey = candidateKey(act);
      const quiet = now - Math.max(this.lastDirectRecvAt, act.since) > 1.5 * HEARTBEAT_MS;
      if (quiet && this.nextProbeAt > now + PROBE_FAST_MS) this.nextProbeAt = now;
      if (now >= this.nextProbeAt) {
        // keep looking for a better path (a better class, or the same class with a lower
        // RTT), slowly; when the active path has gone quiet, probe every other candidate
        // fast: the peer may have moved (NAT rebinding)
        for (const c of this.candidates.values()) {
          if (c.key !== activeKey && (quiet || c.pref >= preference(act.address))) out.push(this.probe(c.c, now));
        }
        this.nextProbeAt = now + (quiet ? PROBE_FAST_MS : PROBE_SLOW_MS);
      }
    } else if (now >= this.nextProbeAt && this.candidates.size > 0) {
      for (const c of this.candidates.values()) out.push(this.probe(c.c, now));
      this.nextProbeAt = now + (this.fastRoundsLeft-- > 0 ? PROBE_FAST_MS : PROBE_SLOW_MS);
    }
    return out;
  }

  nextDeadline(): number {
    if (this.relayOnly) return Infinity;
    let t = Infinity;
    if (this.activePath.kind === 'direct') {
      const lastHeard = Math.max(this.lastDirectRecvAt, this.activePath.since);
      t = Math.min(this.nextHeartbeatAt, lastHeard + SILENT_MS + 1, Math.max(this.nextProbeAt, lastHeard + 1.5 * HEARTBEAT_MS + 1));
    } else if (this.candidates.size > 0) {
      t = this.nextProbeAt;
    }
    for (const p of this.probes.values()) t = Math.min(t, p.sentAt + PROBE_TIMEOUT_MS + 1);
    return t;
  }

  /**
   * Go back to the relay now and re-probe quickly (no hold-down): e.g. the peer just
   * re-handshook through the relay, which it does only when it has no direct path to us
   * (it restarted, or lost its mapping), so our direct path is most likely dead.
   */
  fallBack(now: number, reason: string): void {
    if (this.relayOnly || this.activePath.kind !== 'direct') return;
    this.switchTo({ kind: 'relay' }, reason, now);
    this.speedUp(now);
  }

  private probe(c: Candidate, now: number): PathAction {
    const id = new Uint8Array(randomBytes(8));
    this.probes.set(Buffer.from(id).toString('hex'), { key: candidateKey(c), sentAt: now });
    // bound the outstanding probes: the oldest are forgotten first
    if (this.probes.size > 4 * MAX_REMOTE_CANDIDATES) this.probes.delete(this.probes.keys().next().value!);
    return { type: 'probe', to: c, id };
  }

  private add(c: Candidate, learned: RemoteCandidate['learned']): boolean {
    const key = candidateKey(c);
    const known = this.candidates.get(key);
    if (known) {
      // an address first seen as peer-reflexive, then signalled by the peer: the signal says
      // what it is (interface, STUN, port mapping), and it is no longer an eviction victim
      if (learned === 'signalled' && known.learned === 'observed') { known.learned = 'signalled'; known.source = c.source ?? 'interface'; }
      return false;
    }
    if (!(c.port > 0 && c.port < 65536)) return false;
    if (this.candidates.size >= MAX_REMOTE_CANDIDATES) {
      // make room: drop the oldest observed candidate that is not active
      const a = this.activePath;
      const victim = [...this.candidates.values()].find((x) => x.learned === 'observed' && !(a.kind === 'direct' && x.key === candidateKey(a)));
      if (!victim) return false;
      this.candidates.delete(victim.key);
    }
    this.candidates.set(key, { c, key, pref: preference(c.address), streak: 0, needAcks: 1, learned, source: c.source ?? (learned === 'observed' ? 'observed' : 'interface'), samples: 0 });
    return true;
  }

  private speedUp(now: number): void {
    this.fastRoundsLeft = FAST_ROUNDS;
    this.nextProbeAt = Math.min(this.nextProbeAt, now);
  }

  private switchTo(to: ActivePath, reason: string, now: number): void {
    const from = this.activePath;
    this.activePath = to;
    if (to.kind === 'direct') {
      this.lastDirectRecvAt = now;
      this.nextHeartbeatAt = now + HEARTBEAT_MS;
      this.nextProbeAt = now + PROBE_SLOW_MS;
      const c = this.candidates.get(candidateKey(to));
      if (c) c.needAcks = 1;
    }
    this.changes.push({ from, to, reason });
  }

  /** Path changes since the last call (for logs and the transport's pathChanged). */
  takeChanges(): readonly PathChange[] {
    // called per received packet: no allocation when nothing changed
    return this.changes.length === 0 ? NO_CHANGES : this.changes.splice(0);
  }
}
