// Birthday probing (sans-I/O, one peer): a direct path between an endpoint-independent
// ("easy") NAT and an endpoint-dependent ("hard", symmetric) one, which ordinary punching
// cannot find: the hard NAT gives every destination a new random public port, so the
// port it used towards the easy side is unknown, and the easy side's NAT drops what it
// did not ask for.
//
//   hard side: opens HARD_SOCKETS extra sockets and sends one authenticated PROBE from each
//              to the easy side's public address:port. Its NAT gives each a random public
//              port (HARD_SOCKETS ports of PORT_RANGE), each open to the easy side only;
//              the easy side's NAT drops them for now.
//   easy side: sends EASY_PROBES authenticated PROBEs from its one socket to distinct random
//              ports of the hard side's public address. A probe that hits one of the hard
//              side's ports reaches that socket (the mapping accepts the easy side); its
//              PROBE_ACK comes back from that port, which the probe opened the easy side's
//              NAT for — a direct path, confirmed on both sides by the usual probe rules.
//              (A hard-side PROBE sent after the easy side probed its port gets in too.)
//
// Odds: with n of R ports open and m distinct ports probed, P(miss) = Π_{k<m} (R−n−k)/(R−k)
// ≈ (1 − n/R)^m. For n = 256, m = 2048, R = 64512 (1024–65535: Linux's range for a source
// port ≥ 1024, and what CPE NATs draw from): P(hit) = 99.97 %; the expected first hit is
// probe ≈ 250, about 0.5 s into the easy side's probing. A mapping the hard side's main
// socket already has towards the easy side (its ordinary probes) is a 257th target.
//
// Budget per attempt, per peer: hard side 256 sockets × HARD_ROUNDS = 512 probes at most,
// at ≤ 1000 probes/s, sockets open ≤ HARD_WINDOW_MS; easy side ≤ 2048 probes at ≤ 500/s
// (≈ 4.1 s). Probes are 9-byte inner messages in a Noise transport message: 41 bytes of
// UDP payload, so an attempt is ≤ 84 KB on the easy side, ≤ 21 KB on the hard side. An
// attempt starts only when: the session is up, the pair is still on the relay
// BIRTHDAY_AFTER_MS after both NAT kinds are known (so LAN, IPv6, port mapping and
// filtering that lets a new mapping in win first), exactly one side is hard (never both:
// two random ports would need ~R/2 probes per side), the hard side has no port mapping,
// and the peer's public IPv4 address is known. A failed attempt is retried after
// RETRY_AFTER_MS, at most MAX_FAILED_ATTEMPTS times per peer.
import { randomBytes } from 'node:crypto';
import type { Candidate } from './inner.js';
import type { MappingBehaviour } from './nat-type.js';

export const PORT_MIN = 1024;
export const PORT_MAX = 65535;
export const PORT_RANGE = PORT_MAX - PORT_MIN + 1;
export const HARD_SOCKETS = 256;
export const EASY_PROBES = 2048;
/** easy side: EASY_BATCH probes every EASY_TICK_MS (500/s) */
export const EASY_BATCH = 10;
export const EASY_TICK_MS = 20;
/** hard side: HARD_BATCH probes every HARD_TICK_MS (1000/s); a second round for a lost first packet */
export const HARD_BATCH = 16;
export const HARD_TICK_MS = 16;
export const HARD_ROUNDS = 2;
export const HARD_ROUND_GAP_MS = 1_500;
/** the hard side's sockets stay open this long (the easy side's ~4.1 s of probing plus start skew) */
export const HARD_WINDOW_MS = 8_000;
/** the easy side waits this long after its last probe for a late answer */
export const EASY_LINGER_MS = 1_500;
export const BIRTHDAY_AFTER_MS = 1_000;
export const RETRY_AFTER_MS = 30_000;
export const MAX_FAILED_ATTEMPTS = 3;
/** the most probes one attempt may send, per role */
export const BUDGET = { easy: EASY_PROBES, hard: HARD_SOCKETS * HARD_ROUNDS } as const;

/** P(at least one of m distinct probed ports is one of n open ports among r). */
export function successProbability(n = HARD_SOCKETS, m = EASY_PROBES, r = PORT_RANGE): number {
  let miss = 1;
  for (let k = 0; k < m; k++) miss *= Math.max(0, r - n - k) / (r - k);
  return 1 - miss;
}

export type BirthdayRole = 'easy' | 'hard';

/** What the peer link knows now. */
export interface BirthdayView {
  established: boolean;
  /** the active path is direct */
  direct: boolean;
  /** the active direct path's birthday socket, if it uses one */
  activeVia?: number;
  /** the active direct path's address was found by birthday probing */
  activeBirthday?: boolean;
  ourMapping: MappingBehaviour;
  peerMapping: MappingBehaviour;
  /** the peer's STUN-reflexive IPv4 address (what it signalled) */
  peerPublic?: { address: string; port: number };
  /** the hard side has a router port mapping: that path needs no probing */
  hardSideMapped: boolean;
}

/** easy when we are endpoint-independent and the peer is dependent; hard the other way; otherwise none. */
export function birthdayRole(v: Pick<BirthdayView, 'ourMapping' | 'peerMapping'>): BirthdayRole | undefined {
  if (v.ourMapping === 'independent' && v.peerMapping === 'dependent') return 'easy';
  if (v.ourMapping === 'dependent' && v.peerMapping === 'independent') return 'hard';
  return undefined;
}

export type BirthdayAction =
  | { kind: 'probe'; id: Uint8Array; to: { address: string; port: number; via?: number } }
  | { kind: 'open'; count: number }
  | { kind: 'close'; ids: number[] };

export type BirthdayEvent =
  | { kind: 'started'; role: BirthdayRole; target: string; budget: number }
  | { kind: 'ended'; role: BirthdayRole; probes: number; found: boolean; ms: number; why: string };

const NONCE_LEN = 6;
const ID_LEN = 8;

interface Attempt {
  role: BirthdayRole;
  nonce: Uint8Array;
  target: { address: string; port: number };
  startedAt: number;
  probes: number;
  nextTickAt: number;
  found: boolean;
  /** easy: ports probed (bit per port) */
  probed?: Uint8Array;
  /** hard: socket ids (undefined while opening), the current round and position in it */
  ids?: number[];
  openedAt?: number;
  round: number;
  pos: number;
  /** easy: when the last probe went out */
  doneAt?: number;
  over: boolean;
}

export class BirthdayProbing {
  private attempt?: Attempt;
  private heldSince?: number;
  private failures = 0;
  private nextAllowedAt = -Infinity;
  /** the hard side's socket of a path found by an earlier attempt */
  private keptVia?: number;
  private readonly events: BirthdayEvent[] = [];
  /** attempts started and probes sent, for status and tests */
  readonly totals = { attempts: 0, probes: 0, found: 0 };

  constructor(private readonly random: () => number = Math.random) {}

  get running(): boolean { return this.attempt !== undefined && !this.attempt.over; }

  /** Timer work; returns what to send, open or close now. */
  poll(now: number, v: BirthdayView): BirthdayAction[] {
    const a = this.attempt;
    if (a && !a.over) return this.advance(a, now, v);
    const role = birthdayRole(v);
    if (!v.established || v.direct || !role || v.hardSideMapped || !v.peerPublic || this.failures >= MAX_FAILED_ATTEMPTS) {
      this.heldSince = undefined;
      return [];
    }
    this.heldSince ??= now;
    if (now - this.heldSince < BIRTHDAY_AFTER_MS || now < this.nextAllowedAt) return [];
    return this.start(role, v.peerPublic, now);
  }

  nextDeadline(): number {
    const a = this.attempt;
    if (a && !a.over) {
      if (a.role === 'hard') return a.ids === undefined ? Infinity /* waiting for opened() */ : Math.min(a.nextTickAt, a.openedAt! + HARD_WINDOW_MS);
      return a.doneAt !== undefined ? a.doneAt + EASY_LINGER_MS : a.nextTickAt;
    }
    if (this.heldSince === undefined || this.failures >= MAX_FAILED_ATTEMPTS) return Infinity;
    return Math.max(this.heldSince + BIRTHDAY_AFTER_MS, this.nextAllowedAt);
  }

  /** The hard side's sockets are open (fewer than asked when the host ran short). */
  opened(ids: number[], now: number): BirthdayAction[] {
    const a = this.attempt;
    if (!a || a.over || a.role !== 'hard' || a.ids !== undefined) return ids.length > 0 ? [{ kind: 'close', ids }] : [];
    a.ids = ids;
    a.openedAt = now;
    a.nextTickAt = now;
    return [];
  }

  /**
   * A PROBE_ACK whose id is one of this peer's birthday probes, arriving from the address it
   * probed (and on the socket it left from): the path it found, as a candidate.
   */
  matchAck(id: Uint8Array, from: { address: string; port: number; via?: number }): Candidate | undefined {
    const a = this.attempt;
    if (!a || id.length !== ID_LEN || !equal(id.subarray(0, NONCE_LEN), a.nonce)) return undefined;
    const index = (id[NONCE_LEN]! << 8) | id[NONCE_LEN + 1]!;
    if (a.role === 'easy') {
      if (from.via !== undefined || from.address !== a.target.address || from.port !== index) return undefined;
      a.found = true;
      return { address: from.address, port: from.port, source: 'birthday' };
    }
    const via = a.ids?.[index];
    if (via === undefined || (a.over && via !== this.keptVia)) return undefined;
    if (from.via !== via || from.address !== a.target.address || from.port !== a.target.port) return undefined;
    a.found = true;
    return { address: from.address, port: from.port, via, source: 'birthday' };
  }

  /** Whether an authenticated packet from `from` came by way of birthday probing (the candidate's source). */
  explains(from: { address: string; port: number; via?: number }): boolean {
    if (from.via !== undefined) return from.via === this.keptVia || (this.running && (this.attempt!.ids?.includes(from.via) ?? false));
    const a = this.attempt;
    return a?.role === 'easy' && from.address === a.target.address && a.probed !== undefined && bit(a.probed, from.port);
  }

  /** Started/ended events since the last call (for the log). */
  takeEvents(): BirthdayEvent[] {
    return this.events.splice(0);
  }

  private start(role: BirthdayRole, target: { address: string; port: number }, now: number): BirthdayAction[] {
    const out: BirthdayAction[] = [];
    // a new attempt replaces the socket an old path used (it is gone, or we would be direct)
    if (this.keptVia !== undefined) { out.push({ kind: 'close', ids: [this.keptVia] }); this.keptVia = undefined; }
    this.attempt = {
      role, target, nonce: new Uint8Array(randomBytes(NONCE_LEN)), startedAt: now, probes: 0, nextTickAt: now, found: false,
      round: 0, pos: 0, over: false,
      ...(role === 'easy' ? { probed: new Uint8Array(65536 / 8) } : {}),
    };
    this.totals.attempts++;
    this.events.push({ kind: 'started', role, target: role === 'easy' ? `${target.address}:${PORT_MIN}-${PORT_MAX}` : `${target.address}:${target.port}`, budget: BUDGET[role] });
    if (role === 'hard') out.push({ kind: 'open', count: HARD_SOCKETS });
    else out.push(...this.advance(this.attempt, now, undefined));
    return out;
  }

  private advance(a: Attempt, now: number, v: BirthdayView | undefined): BirthdayAction[] {
    if (v && (!v.established || birthdayRole(v) !== a.role)) return this.end(a, now, v, 'the session or a NAT kind changed');
    if (v?.direct) return this.end(a, now, v, 'a direct path is up');
    if (a.role === 'easy') {
      if (a.doneAt !== undefined) return now >= a.doneAt + EASY_LINGER_MS ? this.end(a, now, v, 'every probe sent') : [];
      if (now < a.nextTickAt) return [];
      const out: BirthdayAction[] = [];
      for (let i = 0; i < EASY_BATCH && a.probes < EASY_PROBES; i++) {
        const port = this.freshPort(a.probed!);
        out.push({ kind: 'probe', id: this.id(a, port), to: { address: a.target.address, port } });
        a.probes++;
      }
      this.totals.probes += out.length;
      // one batch per tick, never a catch-up burst after a late timer: the rate bound holds
      a.nextTickAt = now + EASY_TICK_MS;
      if (a.probes === EASY_PROBES) a.doneAt = now;
      return out;
    }
    if (a.ids === undefined) return [];
    if (now >= a.openedAt! + HARD_WINDOW_MS) return this.end(a, now, v, 'the window closed');
    if (now < a.nextTickAt) return [];
    const out: BirthdayAction[] = [];
    for (let i = 0; i < HARD_BATCH && a.pos < a.ids.length; i++, a.pos++) {
      out.push({ kind: 'probe', id: this.id(a, a.pos), to: { ...a.target, via: a.ids[a.pos]! } });
    }
    a.probes += out.length;
    this.totals.probes += out.length;
    a.nextTickAt = now + HARD_TICK_MS;
    if (a.pos >= a.ids.length) {
      // round r starts HARD_ROUND_GAP_MS after round r−1; after the last, only the window's end is due
      a.round++;
      a.pos = 0;
      a.nextTickAt = a.round < HARD_ROUNDS ? Math.max(a.nextTickAt, a.openedAt! + a.round * HARD_ROUND_GAP_MS) : Infinity;
    }
    return out;
  }

  private end(a: Attempt, now: number, v: BirthdayView | undefined, why: string): BirthdayAction[] {
    a.over = true;
    const out: BirthdayAction[] = [];
    const keep = a.role === 'hard' && v?.activeVia !== undefined && a.ids?.includes(v.activeVia) ? v.activeVia : undefined;
    const found = a.found || keep !== undefined || (v?.direct === true && v.activeBirthday === true);
    const close = a.ids?.filter((id) => id !== keep) ?? [];
    if (close.length > 0) out.push({ kind: 'close', ids: close });
    if (keep !== undefined) this.keptVia = keep;
    if (found) {
      this.failures = 0;
      this.totals.found++;
    } else if (!v?.direct) {
      // a direct path found some other way is no failure; anything else counts against the retries
      this.failures++;
      this.nextAllowedAt = now + RETRY_AFTER_MS;
    }
    // the conditions held until now: the next attempt is due at nextAllowedAt if they still do
    this.heldSince = found || v?.direct ? undefined : now;
    this.events.push({ kind: 'ended', role: a.role, probes: a.probes, found, ms: Math.round(now - a.startedAt), why });
    return out;
  }

  /** A port of the range not yet probed in this attempt (rejection sampling: ≤ 2048 of 64512 taken). */
  private freshPort(probed: Uint8Array): number {
    for (;;) {
      const port = PORT_MIN + Math.floor(this.random() * PORT_RANGE);
      if (!bit(probed, port)) { probed[port >> 3]! |= 1 << (port & 7); return port; }
    }
  }

  private id(a: Attempt, index: number): Uint8Array {
    const id = new Uint8Array(ID_LEN);
    id.set(a.nonce);
    id[NONCE_LEN] = index >> 8;
    id[NONCE_LEN + 1] = index & 0xff;
    return id;
  }
}

function bit(set: Uint8Array, i: number): boolean {
  return (set[i >> 3]! & (1 << (i & 7))) !== 0;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
