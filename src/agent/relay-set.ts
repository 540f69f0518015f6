// Every relay of the session at once: one RelayClient (registration, keepalive, WebSocket
// fallback) per relay, STUN against the relays' addresses of each family, and the choice
// of the relay that carries a relayed peer. Because every agent registers with every relay
// and tells its peers which ones it is on (inner RELAYS message), a relayed pair always
// meets on a relay both are registered with: no pair is split across relays, and losing
// one relay moves traffic to the next within the keepalive's detection time (no failover
// sequence to agree on).
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import type { PeerKey } from '../common/peer-key.js';
import { MAX_ACCEPT_KEYS } from '../relay/wire.js';
import { RelayClient, relayWsUrlOf, type RelayClientState, type RelayTransport } from '../relay/client.js';
import { StunClient } from '../stun/client.js';
import { canonicalIp, endpointText, familyOf, type Family } from './addresses.js';
import { MAX_RELAYS, type Candidate } from './inner.js';
import { relayPathMaxPacket } from './packet-size.js';
import type { UdpEndpoint, UdpSource } from './udp-endpoint.js';
import { formatRelayAddress } from './session-file.js';
import type { AgentKeyPair, RelayAddress, RelayTransportChoice } from './types.js';

/**
 * Keepalive to each relay. The relay client declares a relay lost after 2.5 silent
 * keepalives, so a dead relay is noticed within 1.25–1.75 s and its pairs move to the next
 * common relay well inside 2 s. Cost: 2 tiny frames per second per relay.
 */
export const RELAY_KEEPALIVE_MS = 500;
/** auto mode: WebSocket after this long without a UDP answer */
const UDP_FALLBACK_MS = 1_000;
/** re-run STUN this often (the NAT mapping may change) */
export const STUN_INTERVAL_MS = 60_000;
/** a relay unregistered this long is reported (warn) with its reason */
const UNREACHABLE_WARN_MS = 3_000;
const KEY_CONFLICT_REASON = 'the relay sees this agent\'s key registered from two places: the same key runs in two agents';
/** a relay's KEY_CONFLICT stays in its status reason this long (the relay repeats it while the conflict goes on) */
const KEY_CONFLICT_SHOWN_MS = 120_000;

export interface RelaySetEvents {
  /** a packet from another agent through relay `relay`: `from` is the relay client's cached PeerKey */
  packet(relay: number, from: PeerKey, payload: Uint8Array): void;
  /** a relay's registration state changed (the registered mask may differ) */
  changed(relay: number): void;
  peerGone(relay: number, key: string): void;
  /** STUN told us our address as seen from the relays, for one family */
  reflexive(family: Family, candidate: Candidate): void;
  /** every STUN answer, with its round (one round asks every relay address once): nat-type.ts compares them */
  stunAnswer(family: Family, round: number, server: string, reflexive: Candidate): void;
}

interface Member {
  index: number;
  address: RelayAddress;
  /** the relay's UDP address we use (one family), if any */
  udp?: { address: string; port: number };
  /** addresses per family, for STUN */
  stunTargets: { address: string; port: number; family: Family }[];
  client: RelayClient;
  unregisteredSince: number;
  warned: boolean;
  /** when the relay last told us (KEY_CONFLICT) that our key is registered from two places */
  keyConflictAt: number;
}

export interface RelaySetOptions {
  relays: RelayAddress[];
  keyPair: AgentKeyPair;
  /** the session's other parties: the only keys a relay may forward to us from */
  peers: readonly PeerKey[];
  transport: RelayTransportChoice;
  udp: UdpEndpoint;
  /** no STUN: this agent never reveals its addresses */
  relayOnly: boolean;
  logger: Logger;
  on: RelaySetEvents;
}

/**
 * The relay a pair's packets take, decided by one side: the side whose key is bytewise
 * smaller leads, the other follows. The leader takes the first relay (session order) we are
 * registered on that the peer says it is on (all of ours while we do not know its set);
 * the follower takes the relay it last heard the leader on (`lastHeard`) while it is
 * registered there, else the same first common one. Only one side follows: when both did,
 * two agents that started on different relays (registrations answered in different orders)
 * each moved to the relay it heard the other on, and so swapped places with every packet
 * until the traffic paused and left the pair split (the lab saw 97 swaps in 0.3 s).
 * Bit i of a mask: registered with relay i. Undefined while we are registered nowhere.
 */
export function chooseRelay(mine: number, peerMask: number | undefined, lastHeard: number | undefined, leads: boolean): number | undefined {
  const common = peerMask === undefined ? mine : mine & peerMask;
  if (!leads && lastHeard !== undefined && (common & (1 << lastHeard)) !== 0) return lastHeard;
  const set = common !== 0 ? common : mine;
  if (set === 0) return undefined;
  return 31 - Math.clz32(set & -set);
}

export class RelaySet {
  private readonly members: Member[] = [];
  private readonly byIndex = new Map<number, Member>();
  /** relays that could not be started, and why (e.g. UDP-only and the host does not resolve) */
  private readonly unusable = new Map<number, string>();
  /** a relay's UDP addresses by port → member, to accept its frames (a number key and a
   *  string compare per datagram: no endpoint text built) */
  private readonly byUdpPort = new Map<number, { address: string; member: Member }[]>();
  private readonly stun = new Map<string, StunClient>();
  private stunTimer?: NodeJS.Timeout;
  private stunRound = 0;
  /** the STUN endpoints asked in the current round */
  private stunAsked = new Set<string>();
  private closed = false;

  constructor(private readonly o: RelaySetOptions) {
    if (o.relays.length > MAX_RELAYS) throw new Error(`at most ${MAX_RELAYS} relays per session (got ${o.relays.length})`);
  }

  /**
   * Resolves every relay's host (both families), then starts every registration and STUN.
   * The agent does not wait for it: a slow DNS answer must not delay `ready`.
   */
  async start(): Promise<void> {
    const resolved = await Promise.all(this.o.relays.map((r) => resolveHost(r.host, this.o.logger)));
    if (this.closed) return;
    this.o.relays.forEach((r, i) => {
      try {
        const m = this.member(i, r, resolved[i]!);
        this.members.push(m);
        this.byIndex.set(i, m);
      } catch (err) {
        const why = err instanceof Error ? err.message : String(err);
        this.unusable.set(i, why);
        this.o.logger.error({ relay: this.addressText(i), err: why }, 'cannot use this relay');
      }
    });
    for (const m of this.members) m.client.start();
    this.runStun();
  }

  private member(index: number, r: RelayAddress, addresses: string[]): Member {
    const log = this.o.logger.child({ relay: `${r.host}:${r.udpPort}` });
    // UDP to the first address of a family we have a socket for (IPv4 first: it is what
    // relays most often listen on; the WebSocket fallback covers a wrong guess)
    const reachable = addresses.filter((a) => this.o.udp.canReach(a)).sort((a, b) => familyOf(a) - familyOf(b));
    const udpHost = reachable[0];
    const udpAllowed = udpHost !== undefined && this.o.transport !== 'ws';
    const wsAllowed = r.httpPort !== undefined && this.o.transport !== 'udp';
    if (!udpAllowed && !wsAllowed) {
      throw new Error(this.o.transport === 'ws' ? 'the relay address has no /httpPort for WebSocket'
        : `no UDP address for this relay (its host does not resolve, or this agent has no socket of its family)${this.o.transport === 'udp' ? '' : ' and no /httpPort for WebSocket'}`);
    }
    const udp = udpAllowed ? { address: udpHost, port: r.udpPort } : undefined;
    const client = new RelayClient({
      relayKey: r.publicKey,
      keyPair: this.o.keyPair,
      transport: udpAllowed && wsAllowed ? 'auto' : udpAllowed ? 'udp' : 'ws',
      sendUdp: udp ? (f) => { if (!this.o.udp.send(f, udp.address, udp.port)) throw new Error('UDP send failed'); } : undefined,
      wsUrl: wsAllowed ? relayWsUrlOf(r) : undefined,
      keepaliveMs: RELAY_KEEPALIVE_MS,
      udpFallbackMs: UDP_FALLBACK_MS,
      logger: log,
    });
    const m: Member = {
      index, address: r, udp, client, unregisteredSince: performance.now(), warned: false, keyConflictAt: -Infinity,
      stunTargets: reachable.map((a) => ({ address: a, port: r.udpPort, family: familyOf(a) })),
    };
    for (const t of udp ? [udp, ...m.stunTargets] : m.stunTargets) this.acceptFramesFrom(t.address, t.port, m);
    client.on('packet', (_fromKey, payload, from) => this.o.on.packet(index, from, payload));
    client.on('peerGone', (key) => this.o.on.peerGone(index, key));
    client.on('state', (s, t) => this.onState(m, s, t));
    this.guardRegistration(m, log);
    return m;
  }

  /**
   * Issue #12 attack 6: the relay forwards to us only from the session's other parties (the
   * client sends this accept set after every registration, so a stranger's packets are
   * dropped at the relay, counted `not_accepted`); and a KEY_CONFLICT, our key registered
   * from two places, is told to the operator with what to do.
   */
  private guardRegistration(m: Member, log: Logger): void {
    // a session larger than an accept set stays open to everyone: the relay's per-destination
    // budget still bounds what strangers can push at us
    if (this.o.peers.length <= MAX_ACCEPT_KEYS) m.client.setAcceptFrom(this.o.peers);
    else log.info({ peers: this.o.peers.length, max: MAX_ACCEPT_KEYS }, 'too many parties for a relay accept set: the relay forwards to us from any key');
    m.client.on('keyConflict', () => {
      m.keyConflictAt = performance.now();
      log.warn({ relay: this.addressText(m.index) }, `${KEY_CONFLICT_REASON}: stop one of them`);
    });
  }

  private onState(m: Member, s: RelayClientState, t: RelayTransport | undefined): void {
    if (this.closed) return;
    const log = this.o.logger.child({ relay: this.addressText(m.index) });
    if (s === 'registered') {
      m.unregisteredSince = Infinity;
      m.warned = false;
      log.info({ transport: t }, 'registered with relay');
      // a (re-)registration over UDP often means our NAT mapping changed (the relay saw a
      // new source): ask STUN again now rather than at the next interval
      if (t === 'udp') this.runStun();
    } else if (m.unregisteredSince === Infinity) {
      m.unregisteredSince = performance.now();
      log.warn({ state: s, transport: t }, 'lost the relay registration');
    } else {
      log.debug({ state: s, transport: t }, 'relay state');
    }
    this.o.on.changed(m.index);
  }

  private acceptFramesFrom(address: string, port: number, member: Member): void {
    let list = this.byUdpPort.get(port);
    if (!list) { list = []; this.byUdpPort.set(port, list); }
    const known = list.find((e) => e.address === address);
    if (known) known.member = member; else list.push({ address, member });
  }

  /** A 0x20–0x3F datagram: accepted only from a relay's own UDP address. */
  handleFrame(b: Uint8Array, from: UdpSource): boolean {
    const list = this.byUdpPort.get(from.port);
    if (list === undefined) return false;
    for (let i = 0; i < list.length; i++) {
      if (list[i]!.address === from.address) { list[i]!.member.client.handleDatagram(b); return true; }
    }
    return false;
  }

  /** A STUN datagram: its transaction id finds the request (a relay may answer from another address of its host). */
  handleStun(b: Uint8Array, from: UdpSource): void {
    const direct = this.stun.get(endpointText(from.address, from.port));
    if (direct?.handleDatagram(b)) return;
    for (const c of this.stun.values()) if (c !== direct && c.handleDatagram(b)) return;
  }

  /**
   * Sends through relay `i`; false when not registered there or the send failed. With
   * `inPlace` the packet's SEND_HEADER_SIZE bytes of headroom are the caller's to give up
   * (RelayClient.sendInPlace): the frame is built around it, no copy.
   */
  send(i: number, peerKey: Uint8Array, packet: Uint8Array, inPlace = false): boolean {
    const c = this.byIndex.get(i)?.client;
    if (!c) return false;
    return inPlace ? c.sendInPlace(peerKey, packet) : c.send(peerKey, packet);
  }

  /** The bound on a transport packet through relay i (packet-size.ts): by the address we reach it at. */
  maxPacket(i: number | undefined): number {
    const m = i === undefined ? undefined : this.byIndex.get(i);
    return relayPathMaxPacket(m?.udp?.address ?? m?.stunTargets[0]?.address);
  }

  isRegistered(i: number): boolean {
    return this.byIndex.get(i)?.client.state === 'registered';
  }

  registeredCount(): number {
    return this.members.filter((m) => m.client.state === 'registered').length;
  }

  /** Bit i set: registered with relay i (the inner RELAYS message). */
  registeredMask(): number {
    let mask = 0;
    for (const m of this.members) if (m.client.state === 'registered') mask |= 1 << m.index;
    return mask >>> 0;
  }

  /** The relay for a peer, by chooseRelay with our registrations now. */
  pick(peerMask: number | undefined, lastHeard: number | undefined, leads: boolean): number | undefined {
    return chooseRelay(this.registeredMask(), peerMask, lastHeard, leads);
  }

  addressText(i: number): string {
    return formatRelayAddress(this.o.relays[i]!);
  }

  transportOf(i: number): RelayTransport | undefined {
    return this.byIndex.get(i)?.client.transport;
  }

  /** Why relay i is not registered, or what is wrong while it is (a key conflict), for status; undefined when all is well. */
  problem(i: number, now: number): string | undefined {
    const m = this.byIndex.get(i);
    if (!m) return this.unusable.get(i) ?? 'resolving the relay host';
    if (now - m.keyConflictAt < KEY_CONFLICT_SHOWN_MS) return `${KEY_CONFLICT_REASON} (stop one)`;
    const st = m.client.state;
    if (st === 'registered') return undefined;
    if (st === 'rejected') return 'the relay rejected our key (not on its allow-list, or full)';
    const secs = Math.round((now - m.unregisteredSince) / 1000);
    const via = m.client.transport === 'ws' ? `WebSocket ${relayWsUrlOf(m.address) ?? '-'}` : `UDP ${m.udp ? endpointText(m.udp.address, m.udp.port) : '-'}`;
    return `no registration answer over ${via} for ${secs} s`;
  }

  /** Warns once per outage about a relay that stays unreachable (called from the agent's deadline timer). */
  checkUnreachable(now: number): void {
    for (const m of this.members) {
      if (!m.warned && now - m.unregisteredSince >= UNREACHABLE_WARN_MS) {
        m.warned = true;
        this.o.logger.warn({ relay: this.addressText(m.index), reason: this.problem(m.index, now) }, 'relay unreachable');
      }
    }
  }

  nextDeadline(): number {
    let t = Infinity;
    for (const m of this.members) if (!m.warned && m.unregisteredSince !== Infinity) t = Math.min(t, m.unregisteredSince + UNREACHABLE_WARN_MS);
    return t;
  }

  /** Asks every relay address for our reflexive address now, and again every STUN_INTERVAL_MS. */
  private runStun(): void {
    if (this.o.relayOnly || this.closed) return;
    if (this.stunTimer) clearTimeout(this.stunTimer);
    const done = new Set<Family>();
    const round = ++this.stunRound;
    // endpoints nobody asked last round (an OTHER-ADDRESS the relay stopped naming) go: the
    // client map stays bounded by the relays' endpoints
    for (const [key, c] of this.stun) if (!this.stunAsked.has(key)) { c.close(); this.stun.delete(key); }
    const asked = new Set<string>();
    this.stunAsked = asked;
    const ask = (address: string, port: number, family: Family, followOther: boolean): void => {
      const key = endpointText(address, port);
      if (asked.has(key)) return;
      asked.add(key);
      let client = this.stun.get(key);
      if (!client) {
        client = new StunClient({ send: (d) => { this.o.udp.send(d, address, port); }, autoTimers: true });
        this.stun.set(key, client);
      }
      client.binding().then(({ mapped, other }) => {
        if (this.closed) return;
        const reflexive = canonicalIp(mapped.address);
        if (!reflexive || familyOf(reflexive) !== family) return;
        const candidate: Candidate = { address: reflexive, port: mapped.port, source: 'stun' };
        this.o.on.stunAnswer(family, round, key, candidate);
        // a relay's second STUN endpoint (RFC 5780 OTHER-ADDRESS, `mpyc-relay serve
        // --stun-alt-port`) is a second opinion in the same round, so one relay is enough
        // to tell an endpoint-independent mapping from a symmetric one (nat-type.ts).
        // Followed one hop only (an endpoint the relay named, never one it named in turn),
        // once per endpoint and round: a relay cannot make the agent send more than one
        // 20-byte request per minute to an address of its choosing.
        const o = followOther && other ? canonicalIp(other.address) : undefined;
        if (o && familyOf(o) === family && other!.port > 0) ask(o, other!.port, family, false);
        // in each round, the first relay that answers for a family speaks for it
        if (done.has(family)) return;
        done.add(family);
        this.o.on.reflexive(family, candidate);
      }).catch((err: unknown) => this.o.logger.debug({ relay: key, err: String(err) }, 'STUN failed'));
    };
    for (const m of this.members) for (const t of m.stunTargets) ask(t.address, t.port, t.family, true);
    this.stunTimer = setTimeout(() => this.runStun(), STUN_INTERVAL_MS);
    this.stunTimer.unref();
  }

  /**
   * The agent is stopping, its sockets still open: every relay we are registered with gets
   * one LEAVE (RelayClient.leave) so it forgets us now and our peers' packets to us get
   * PEER_GONE instead of vanishing until the relay's expiry (~35 s). One datagram each and no
   * waiting: stopping must not depend on a relay answering (a lost LEAVE only leaves the
   * relay's expiry to do it, as before LEAVE existed).
   */
  close(): void {
    this.closed = true;
    if (this.stunTimer) clearTimeout(this.stunTimer);
    for (const s of this.stun.values()) s.close();
    for (const m of this.members) m.client.leave();
  }
}

/** Every address of a relay host, both families; empty (WebSocket only) when it does not resolve. */
async function resolveHost(host: string, logger: Logger): Promise<string[]> {
  if (isIP(host)) return [canonicalIp(host)!];
  try {
    const all = await lookup(host, { all: true });
    return [...new Set(all.map((a) => canonicalIp(a.address)).filter((a): a is string => a !== null))];
  } catch (err) {
    logger.warn({ host, err: String(err) }, 'cannot resolve relay host; WebSocket only');
    return [];
  }
}
