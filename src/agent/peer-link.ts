// One peer, wired: its path state (path.ts), its stream connection (streams.ts), what it
// told us (candidates, relays), whether it is alive (waiting / connected / offline), and
// `mpyc-agent ping`. Sans-timer: the agent calls poll(now) at nextDeadline(); every send
// goes through `send`, the session layer, with an explicit route when one is needed.
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { PeerKey } from '../common/peer-key.js';
import { decodeInner, encodeCandidates, encodeNat, encodePath, encodeProbe, encodeRelays, type Candidate } from './inner.js';
import { localMechanism } from './mechanism.js';
import { BirthdayProbing, birthdayRole, type BirthdayAction, type BirthdayView } from './birthday.js';
import { familyOf } from './addresses.js';
import type { MappingBehaviour } from './nat-type.js';
import { PeerPaths, type PathChange } from './path.js';
import type { PeerStreams } from './streams.js';
import { candidateKey } from './candidates.js';
import type { PathMechanism } from './types.js';

/**
 * Where a session datagram came from or goes to: relay i of the session, or a direct
 * address — from the main socket of its family, or from birthday socket `via`. A relayed
 * one names the peer too (`peer`): the sender key the relay authenticated for a datagram
 * that came in, the destination key for one that goes out.
 */
export type Route = { kind: 'relay'; relay: number; peer?: PeerKey } | { kind: 'direct'; address: string; port: number; via?: number };

/** `direct ADDRESS:PORT` or `relay` (the log's from/to; which relay goes in a field of its own) */
export function describeRoute(r: Route | { kind: 'relay' } | { kind: 'direct'; address: string; port: number; via?: number }): string {
  return r.kind === 'direct' ? `direct ${candidateKey(r)}` : 'relay';
}

/** The direct route to a candidate (from the socket it is reached from). */
export function directRoute(c: { address: string; port: number; via?: number }): Route {
  return c.via === undefined ? { kind: 'direct', address: c.address, port: c.port } : { kind: 'direct', address: c.address, port: c.port, via: c.via };
}

/** re-send our candidates this often while the peer has no direct path */
export const CANDIDATE_RESEND_MS = 3_000;
/** re-send PATH this often while direct (a lost one leaves the peer's status stale until then) */
export const PATH_REPORT_MS = 10_000;
/** a connected peer silent this long is `offline` (the transport's keepalive answers every 5 s) */
export const DEFAULT_OFFLINE_AFTER_MS = 15_000;
/** local connections to a peer offline this long are closed (MPyC would otherwise hang until its own timeout) */
export const DEFAULT_OFFLINE_CLOSE_MS = 15_000;
/** "still waiting for party j" every this often while a peer was never heard */
export const WAITING_LOG_MS = 15_000;
/** an unanswered ping counts as lost after this long */
export const PING_TIMEOUT_MS = 2_000;
/** pings in flight per peer (each holds a promise until answered or timed out) */
const MAX_PINGS_IN_FLIGHT = 64;

export type Liveness = 'waiting' | 'connected' | 'offline';

export interface PingSample {
  seq: number;
  /** undefined: no answer within the timeout */
  rttMs?: number;
  /** the route the ping was sent on */
  route: Route | null;
}

export interface LinkContext {
  /** the session layer: encrypt and send (to `to` if given; false when it did not go out now) */
  send(plaintext: Uint8Array, to?: Route): boolean;
  established(): boolean;
  /** our candidates to tell the peer (empty with --relay-only) */
  localCandidates(): Candidate[];
  relayMask(): number;
  /** our NAT's mapping behaviour per family (nat-type.ts; absent: unknown) */
  natTypes?(): { v4: MappingBehaviour; v6: MappingBehaviour };
  /** birthday sockets (udp-endpoint.ts): open some, close some (absent: no birthday probing) */
  openSockets?(count: number): Promise<number[]>;
  closeSockets?(ids: readonly number[]): void;
  /** the route a packet without an explicit one takes now */
  activeRoute(): Route | null;
  /** interface zones for a signalled link-local candidate */
  expand(c: Candidate): Candidate[];
  /** a probe RTT sample or a ping sample (the RTT histogram) */
  onRttSample(rttMs: number): void;
  /** something that may have moved this link's deadline earlier happened */
  reschedule(): void;
  logger: Logger;
  relayOnly: boolean;
  offlineAfterMs: number;
  offlineCloseMs: number;
}

interface PendingPing { sentAt: number; route: Route | null; done: (rttMs: number | undefined) => void; timeoutAt: number }

export class PeerLink {
  readonly paths: PeerPaths;
  /** birthday probing towards this peer (birthday.ts): runs only between an easy and a hard NAT */
  readonly birthday = new BirthdayProbing();
  bytesSent = 0;
  bytesReceived = 0;
  lastError?: string;
  /** relays the peer says it is registered with (RELAYS); undefined until it tells us */
  relayMask?: number;
  /** the relay its latest relayed packet came through (followed when the peer leads the choice) */
  lastRelayHeard?: number;
  /** the relay our relayed packets to it use now (to log a relay → relay move as a path change) */
  relayInUse?: number;
  /** one route per relay of the session, naming this peer (relayed packets come by the thousand: no object per packet) */
  readonly relayRoutes: Route[];
  /** the mechanism of its direct path to us, as it reports it (inner PATH); undefined while relayed or not told */
  peerMechanism?: PathMechanism;
  /** its NAT's mapping behaviour per family, as it reports it (inner NAT) */
  peerNat: { v4: MappingBehaviour; v6: MappingBehaviour } = { v4: 'unknown', v6: 'unknown' };
  /** the candidates it signalled last (inner CANDIDATES) */
  peerCandidates: readonly Candidate[] = [];
  private lastPathReportAt = -Infinity;
  pathSince: number;
  liveness: Liveness = 'waiting';
  livenessSince: number;
  private lastHeardAt = -Infinity;
  private lastCandidatesSentAt = -Infinity;
  private nextWaitingLogAt: number;
  private readonly pings = new Map<string, PendingPing>();

  constructor(
    readonly index: number,
    readonly name: string | undefined,
    readonly key: PeerKey,
    readonly streams: PeerStreams,
    private readonly ctx: LinkContext,
    now: number,
    relays: number,
    /** our key is the pair's smaller: the peer follows our relay choice (chooseRelay in relay-set.ts) */
    readonly leadsRelayChoice: boolean,
  ) {
    this.relayRoutes = Array.from({ length: relays }, (_, relay) => ({ kind: 'relay', relay, peer: key }));
    this.paths = new PeerPaths(ctx.relayOnly);
    this.pathSince = now;
    this.livenessSince = now;
    this.nextWaitingLogAt = now + WAITING_LOG_MS;
  }

  get lastHeardAgoMs(): number | undefined {
    return this.lastHeardAt === -Infinity ? undefined : performance.now() - this.lastHeardAt;
  }

  /** Any authenticated packet of the peer (data or keepalive) arrived. */
  heard(now: number): void {
    this.lastHeardAt = now;
    if (this.liveness !== 'connected') {
      const was = this.liveness;
      this.setLiveness('connected', now);
      this.ctx.logger.info({ peer: this.index, after: was === 'offline' ? 'offline' : 'waiting' }, 'peer connected');
      this.ctx.reschedule();
    }
  }

  /** A non-empty plaintext of the peer, arrived from `from`. */
  onPlaintext(plaintext: Uint8Array, from: Route, now: number, drop: (reason: string) => void): void {
    if (from.kind === 'direct') {
      if (this.paths.onDirectPacket(from, now, this.birthday.explains(from) ? 'birthday' : 'observed')) this.ctx.reschedule();
    } else {
      this.lastRelayHeard = from.relay;
    }
    const inner = decodeInner(plaintext);
    switch (inner.type) {
      case 'transport':
        this.streams.receive(inner.packet);
        return;
      case 'candidates':
        this.peerCandidates = inner.candidates;
        this.paths.addSignalled(inner.candidates.flatMap((c) => this.ctx.expand(c)), now);
        break;
      case 'relays':
        this.relayMask = inner.mask;
        break;
      case 'nat':
        this.peerNat = { v4: inner.v4, v6: inner.v6 };
        break;
      case 'path':
        this.peerMechanism = inner.mechanism;
        return;
      case 'probe':
        // answer on the path the probe came in on; probes never travel via the relay
        if (from.kind === 'direct' && !this.ctx.relayOnly) this.ctx.send(encodeProbe('probeAck', inner.id), from);
        return;
      case 'probeAck':
        if (from.kind === 'direct') {
          const found = this.birthday.matchAck(inner.id, from);
          if (found) this.paths.confirmFound(found, now);
          else this.paths.onProbeAck(inner.id, from, now);
          for (const s of this.paths.takeRttSamples()) this.ctx.onRttSample(s.rttMs);
        }
        break;
      case 'ping':
        this.ctx.send(encodeProbe('pong', inner.id), from);
        return;
      case 'pong':
        this.onPong(inner.id, now);
        return;
      case 'invalid':
        drop(inner.reason);
        return;
    }
    this.ctx.reschedule();
  }

  /** Our session with the peer was (re-)established. */
  onEstablished(now: number): void {
    this.lastError = undefined;
    this.sendSignals(now);
  }

  /** Tells the peer our candidates and relays (on establishment, changes, and every 3 s while relayed). */
  sendSignals(now: number): void {
    if (!this.ctx.established()) return;
    this.lastCandidatesSentAt = now;
    this.ctx.send(encodeRelays(this.ctx.relayMask()));
    if (this.ctx.relayOnly) return;
    this.ctx.send(encodeCandidates(this.ctx.localCandidates()));
    const nat = this.ctx.natTypes?.() ?? { v4: 'unknown', v6: 'unknown' };
    this.ctx.send(encodeNat(nat.v4, nat.v6));
  }

  /** What found our active direct path (mechanism.ts), or undefined while relayed. */
  localMechanism(): PathMechanism | undefined {
    const a = this.paths.active;
    return a.kind === 'direct' ? localMechanism(a.address, this.paths.activeInfo()?.source ?? 'observed') : undefined;
  }

  /** Tells the peer what found our direct path to it (on every path change, and every PATH_REPORT_MS while direct). */
  reportPath(now: number): void {
    if (this.ctx.relayOnly || !this.ctx.established()) return;
    this.lastPathReportAt = now;
    this.ctx.send(encodePath(this.localMechanism()));
  }

  /** Timer work due at `now`; returns the path changes it caused. */
  poll(now: number): readonly PathChange[] {
    for (const a of this.paths.poll(now)) this.ctx.send(encodeProbe('probe', a.id), directRoute(a.to));
    if (this.paths.active.kind === 'relay' && now - this.lastCandidatesSentAt >= CANDIDATE_RESEND_MS) this.sendSignals(now);
    if (this.paths.active.kind === 'direct' && now - this.lastPathReportAt >= PATH_REPORT_MS) this.reportPath(now);
    if (this.ctx.openSockets && !this.ctx.relayOnly) this.runBirthday(this.birthday.poll(now, this.birthdayView()), now);
    this.pollLiveness(now);
    this.pollPings(now);
    return this.paths.takeChanges();
  }

  private pollLiveness(now: number): void {
    if (this.liveness === 'waiting' && now >= this.nextWaitingLogAt) {
      this.nextWaitingLogAt = now + WAITING_LOG_MS;
      this.ctx.logger.info({ peer: this.index, name: this.name, waitingS: Math.round((now - this.livenessSince) / 1000),
        reason: this.lastError }, `still waiting for party ${this.index}`);
    }
    if (this.liveness === 'connected' && now - this.lastHeardAt >= this.ctx.offlineAfterMs) {
      this.setLiveness('offline', now);
      this.ctx.logger.warn({ peer: this.index, silentS: Math.round((now - this.lastHeardAt) / 1000) }, 'peer offline');
    }
    if (this.liveness === 'offline' && now - this.livenessSince >= this.ctx.offlineCloseMs && this.streams.localSockets > 0) {
      this.streams.closeLocal(`party ${this.index} offline for ${Math.round((now - this.livenessSince) / 1000)} s`);
    }
  }

  private setLiveness(l: Liveness, now: number): void {
    this.liveness = l;
    this.livenessSince = now;
  }

  nextDeadline(): number {
    let t = this.paths.nextDeadline();
    if (this.paths.active.kind === 'relay' && this.ctx.established()) t = Math.min(t, this.lastCandidatesSentAt + CANDIDATE_RESEND_MS);
    if (this.paths.active.kind === 'direct' && !this.ctx.relayOnly) t = Math.min(t, this.lastPathReportAt + PATH_REPORT_MS);
    if (this.liveness === 'waiting') t = Math.min(t, this.nextWaitingLogAt);
    if (this.liveness === 'connected') t = Math.min(t, this.lastHeardAt + this.ctx.offlineAfterMs);
    if (this.liveness === 'offline' && this.streams.localSockets > 0) t = Math.min(t, this.livenessSince + this.ctx.offlineCloseMs);
    for (const p of this.pings.values()) t = Math.min(t, p.timeoutAt);
    if (this.ctx.openSockets && !this.ctx.relayOnly) t = Math.min(t, this.birthday.nextDeadline());
    return t;
  }

  // ---------------------------------------------------------------- birthday probing

  private birthdayView(): BirthdayView {
    const a = this.paths.active;
    const nat = this.ctx.natTypes?.() ?? { v4: 'unknown', v6: 'unknown' };
    const role = birthdayRole({ ourMapping: nat.v4, peerMapping: this.peerNat.v4 });
    const peerStun = this.peerCandidates.find((c) => c.source === 'stun' && familyOf(c.address) === 4);
    const hardCandidates = role === 'hard' ? this.ctx.localCandidates() : this.peerCandidates;
    return {
      established: this.ctx.established(),
      direct: a.kind === 'direct',
      ...(a.kind === 'direct' && a.via !== undefined ? { activeVia: a.via } : {}),
      activeBirthday: this.paths.activeInfo()?.source === 'birthday',
      ourMapping: nat.v4,
      peerMapping: this.peerNat.v4,
      ...(peerStun ? { peerPublic: { address: peerStun.address, port: peerStun.port } } : {}),
      hardSideMapped: hardCandidates.some((c) => c.source === 'portmap'),
    };
  }

  /** Carries out what birthday probing asks for: probes (authenticated like every probe), sockets, logs. */
  private runBirthday(actions: BirthdayAction[], now: number): void {
    for (const act of actions) {
      if (act.kind === 'probe') {
        this.ctx.send(encodeProbe('probe', act.id), directRoute(act.to));
      } else if (act.kind === 'open') {
        void this.ctx.openSockets!(act.count).then((ids) => {
          this.runBirthday(this.birthday.opened(ids, performance.now()), performance.now());
          this.ctx.reschedule();
        });
      } else {
        this.ctx.closeSockets?.(act.ids);
        for (const id of act.ids) this.paths.forgetVia(id, now);
      }
    }
    for (const e of this.birthday.takeEvents()) {
      if (e.kind === 'started') this.ctx.logger.info({ peer: this.index, role: e.role, target: e.target, budget: e.budget }, 'birthday probing');
      else this.ctx.logger.info({ peer: this.index, role: e.role, probes: e.probes, found: e.found, ms: e.ms, why: e.why }, 'birthday probing ended');
    }
  }

  // ---------------------------------------------------------------- ping

  /** One ping on the route packets take now; resolves with the RTT, or undefined when lost. */
  ping(now: number): Promise<{ rttMs: number | undefined; route: Route | null }> {
    return new Promise((resolve) => {
      const route = this.ctx.activeRoute();
      const id = new Uint8Array(randomBytes(8));
      const key = Buffer.from(id).toString('hex');
      const entry: PendingPing = { sentAt: now, route, timeoutAt: now + PING_TIMEOUT_MS, done: (rttMs) => resolve({ rttMs, route }) };
      if (!route || this.pings.size >= MAX_PINGS_IN_FLIGHT) { resolve({ rttMs: undefined, route }); return; }
      // by the active route, as data goes (no explicit route: queued behind a handshake
      // that is still completing rather than dropped)
      this.ctx.send(encodeProbe('ping', id));
      this.pings.set(key, entry);
      this.ctx.reschedule();
    });
  }

  private onPong(id: Uint8Array, now: number): void {
    const key = Buffer.from(id).toString('hex');
    const p = this.pings.get(key);
    if (!p) return;
    this.pings.delete(key);
    const rtt = Math.max(0, now - p.sentAt);
    this.ctx.onRttSample(rtt);
    p.done(rtt);
  }

  private pollPings(now: number): void {
    for (const [key, p] of this.pings) {
      if (now >= p.timeoutAt) { this.pings.delete(key); p.done(undefined); }
    }
  }

  /** Resolves every outstanding ping as lost (stop). */
  cancelPings(): void {
    for (const p of this.pings.values()) p.done(undefined);
    this.pings.clear();
  }
}
