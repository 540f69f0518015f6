// The party daemon's core, wired: the UDP endpoint (udp-endpoint.ts) demultiplexes STUN,
// relay frames and session messages; the relay set (relay-set.ts) holds a registration
// with every relay; the session layer (src/session) encrypts per peer; each peer's link
// (peer-link.ts) holds its paths (path.ts) and streams (streams.ts); the port-layout
// listeners (listeners.ts) accept MPyC's connections. One packet to a peer:
//
//   MPyC bytes → PeerStreams (transport packet) → inner TRANSPORT → SessionManager.send
//     → transmit(peer, packet, route | null) → route = null ? the peer's active route
//     → UdpEndpoint.send (direct) | RelaySet.send(relay i) (relayed)
//   and back: UDP datagram → first byte → SessionManager.receive(datagram, from route)
//     → deliver(peer, plaintext, from) → PeerLink.onPlaintext → streams / paths / relays
//
// Timers: one, armed for the earliest deadline of the session layer, the peer links and
// the relay set (each exposes nextDeadline()); the transport and the relay clients run
// their own.
import { isIPv6, type Socket } from 'node:net';
import {
  SESSION_HEADROOM, SESSION_TAILROOM, SessionManager, TRANSPORT_OVERHEAD_LEN, sessionWire, type ReceiveResult, type SessionEvent,
} from '../session/index.js';
import { SEND_HEADER_SIZE } from '../relay/wire.js';
import { PeerKey } from '../common/peer-key.js';
import { Stage, mark } from '../common/stage-trace.js';
import { candidateKey, classify, gatherInterfaceCandidates, linkLocalZones } from './candidates.js';
import { INNER_HEADROOM, transportInnerInPlace, withLocalZones, type Candidate } from './inner.js';
import { PeerStreams } from './streams.js';
import { LocalConnector } from './local-connector.js';
import { PortLayoutListeners } from './listeners.js';
import { AgentMetrics } from './metrics.js';
import { UdpEndpoint, type UdpSource } from './udp-endpoint.js';
import { RelaySet } from './relay-set.js';
import { DEFAULT_OFFLINE_AFTER_MS, DEFAULT_OFFLINE_CLOSE_MS, PeerLink, describeRoute, type Route } from './peer-link.js';
import type { PathChange } from './path.js';
import { buildStatus, routeInfo } from './agent-status.js';
import { DeadlineTimer } from './deadline-timer.js';
import { directPathMaxPacket } from './packet-size.js';
import type { Family } from './addresses.js';
import { NatTypeTracker } from './nat-type.js';
import { PortMapper } from './portmap/port-mapper.js';
import type { AgentConfig, AgentHandle, AgentStatus, PingOptions, PingResult, StreamTarget } from './types.js';

const { MSG_INITIATION } = sessionWire;
/** stop(): in-flight stream data may drain this long by default */
const DEFAULT_STOP_GRACE_MS = 500;
/** stop(): listeners get this long to close once every connection was destroyed */
const LISTENER_CLOSE_BOUND_MS = 1_000;
/** ping bounds: samples per call and the shortest interval (a control-socket caller is local, but still bounded) */
const MAX_PING_COUNT = 1_000;
const MIN_PING_INTERVAL_MS = 10;
/**
 * Room the transport leaves around every packet it builds, so that each layer below writes
 * in place (one copy per packet, the stream bytes into the packet): the inner type byte,
 * the session header and the relay SEND header in front, the AEAD tag behind.
 *   | SEND header 33 | session header 16 | inner 1 | transport packet | tag 16 |
 */
const PACKET_HEADROOM = SEND_HEADER_SIZE + SESSION_HEADROOM + INNER_HEADROOM;
const PACKET_TAILROOM = SESSION_TAILROOM;
/**
 * A peer's congestion window is at most this fraction of the UDP receive buffer (ours,
 * and the peer runs the same code): the kernel charges small datagrams about twice their
 * size, and two peers may send at full speed at once. So a fast sender is held back by
 * ACKs before it overruns a slower receiver's socket (no RcvbufErrors), as TCP's receive
 * window does; 2 MiB with the default 4 MiB buffer, 400 Mbit/s at a 40 ms RTT.
 */
const WINDOW_SHARE_OF_RECEIVE_BUFFER = 4;

/**
 * Whether to ask the router for a port mapping: not with --relay-only (no address is ever
 * revealed), not when turned off, and not in a session whose relays are all on this host
 * (a demo, a test): no peer comes in through the router then, and nothing is asked of it.
 */
export function wantsPortMapping(cfg: Pick<AgentConfig, 'relayOnly' | 'portMapping' | 'relays'>): boolean {
  if (cfg.relayOnly || cfg.portMapping === false) return false;
  return !cfg.relays.every((r) => r.host === 'localhost' || classify(r.host) === 'loopback');
}

export class Agent implements AgentHandle {
  private udp?: UdpEndpoint;
  private relays?: RelaySet;
  private sessions!: SessionManager<Route>;
  /** by PeerKey.id */
  private readonly links = new Map<string, PeerLink>();
  private readonly byIndex = new Map<number, PeerLink>();
  /** the relay client names peers by key text */
  private readonly byText = new Map<string, PeerLink>();
  private localCandidates: Candidate[] = [];
  private readonly reflexive = new Map<Family, Candidate>();
  private readonly natTypes = new NatTypeTracker();
  private portMapper?: PortMapper;
  /** the router's mapping of our IPv4 socket, as a candidate */
  private portMapped?: Candidate;
  private zones: string[] = [];
  private listeners?: PortLayoutListeners;
  private connector!: LocalConnector;
  private readonly timer = new DeadlineTimer(() => this.nextDeadline(), (now) => this.onDue(now));
  private readonly startedAt = performance.now();
  private stopped = false;
  private stopping?: Promise<void>;
  readonly metrics_: AgentMetrics;
  private readonly dropInner = (reason: string): void => this.metrics_.drop(reason);
  /** the plaintext sendTransportPacket is sealing in place right now (see isSealedInPlace) */
  private inPlace: Uint8Array | null = null;

  constructor(private readonly cfg: AgentConfig) {
    this.metrics_ = new AgentMetrics();
  }

  private get log() { return this.cfg.logger; }

  async start(): Promise<void> {
    const ownKey = PeerKey.fromBytes(this.cfg.keyPair.publicKey);
    const peers = this.cfg.parties.filter((p) => p.index !== this.cfg.ownIndex)
      .map((p) => ({ p, key: PeerKey.fromText(p.publicKey, `party ${p.index} key`) }));
    // the socket first: its receive buffer bounds every peer's congestion window
    // udpBind names the IPv4 socket (or, given an IPv6 address, the only socket)
    const bind = this.cfg.udpBind;
    const v6only = isIPv6(bind.host);
    const bind6 = v6only ? bind.host : this.cfg.udpBind6 === undefined ? (bind.host === '0.0.0.0' ? '::' : null) : this.cfg.udpBind6;
    this.udp = await UdpEndpoint.open({
      v4: v6only ? undefined : { host: bind.host, port: bind.port },
      v6: bind6 === null ? undefined : { host: bind6, port: v6only ? bind.port : 0 },
      logger: this.log,
      handlers: {
        stun: (b, from) => this.relays?.handleStun(b, from),
        session: (b, from) => { mark(Stage.received); this.onDirectDatagram(b, from); },
        relay: (b, from) => { mark(Stage.received); if (!this.relays?.handleFrame(b, from)) this.metrics_.drop('relay_frame_from_stranger'); },
        drop: (reason) => this.metrics_.drop(reason),
      },
    });
    const maxCongestionWindow = this.udp.receiveBufferBytes / WINDOW_SHARE_OF_RECEIVE_BUFFER;
    this.connector = new LocalConnector(this.log);
    const now = performance.now();
    for (const { p, key } of peers) {
      const log = this.log.child({ peer: p.index });
      // the bytewise-smaller key is side 0 of the pair: its streams' ids, and it leads the pair's relay choice
      const side = ownKey.compare(key) < 0 ? 0 : 1;
      const streams = new PeerStreams({
        side,
        // a packet queued behind a handshake may have started one: its retry is a deadline
        sendDatagram: (d) => {
          mark(Stage.built, p.index);
          if (!this.sendTransportPacket(key, d)) this.reschedule();
        },
        resolveTarget: (t) => this.resolveTarget(t),
        connector: this.connector,
        logger: log,
        idleTimeoutMs: this.cfg.streamIdleTimeoutMs ?? 3_600_000,
        peerIndex: p.index,
        headroom: PACKET_HEADROOM,
        tailroom: PACKET_TAILROOM,
        maxCongestionWindow,
      });
      const link: PeerLink = new PeerLink(p.index, p.name, key, streams, {
        send: (plaintext, to) => this.sessions.send(key, plaintext, to),
        established: () => this.sessions.info(key).established,
        localCandidates: () => this.candidatesToSignal(),
        relayMask: () => this.relays?.registeredMask() ?? 0,
        natTypes: () => ({ v4: this.natTypes.get(4), v6: this.natTypes.get(6) }),
        openSockets: (count) => this.udp?.openAux(count) ?? Promise.resolve([]),
        closeSockets: (ids) => this.udp?.closeAux(ids),
        activeRoute: () => this.activeRoute(link),
        expand: (c) => withLocalZones(c, this.zones),
        onRttSample: (ms) => this.metrics_.rttSample(String(p.index), ms),
        reschedule: () => this.reschedule(),
        logger: this.log,
        relayOnly: this.cfg.relayOnly,
        offlineAfterMs: this.cfg.peerOfflineMs ?? DEFAULT_OFFLINE_AFTER_MS,
        offlineCloseMs: this.cfg.offlineCloseMs ?? DEFAULT_OFFLINE_CLOSE_MS,
      }, now, this.cfg.relays.length, side === 0);
      this.links.set(key.id, link);
      this.byIndex.set(p.index, link);
      this.byText.set(key.text, link);
    }
    this.sessions = new SessionManager<Route>({
      staticKey: this.cfg.keyPair,
      peers: [...this.links.values()].map((l) => l.key),
      // false when no route took the packet (no relay registered yet): an initiation that
      // went nowhere is then not spaced, and the first registration's connect() sends one at once
      transmit: (peer, packet, to) => {
        const link = this.links.get(peer.id);
        const sentBefore = link?.bytesSent;
        this.transmit(peer, packet, to);
        return link !== undefined && link.bytesSent !== sentBefore;
      },
      deliver: (peer, plaintext, from) => this.deliver(peer, plaintext, from),
      onEvent: (e) => this.onSessionEvent(e),
      // cookie replies under load, and per-source initiation budgets (docs/protocol/session.md)
      source: { bytesOf: sourceBytes, reply: (packet, to) => this.sendTo(to, packet) },
    });
    this.metrics_.readPeersFrom(() => [...this.links.values()].map((l) => ({
      peer: String(l.index), path: l.paths.active.kind, retransmittedTotal: l.streams.retransmittedTotal(),
    })));

    this.localCandidates = this.cfg.relayOnly ? [] : gatherInterfaceCandidates(this.udp.bound);
    this.zones = linkLocalZones();
    this.relays = new RelaySet({
      relays: this.cfg.relays, keyPair: this.cfg.keyPair, peers: [...this.links.values()].map((l) => l.key), transport: this.cfg.relayTransport, udp: this.udp,
      relayOnly: this.cfg.relayOnly, logger: this.log,
      on: {
        packet: (i, from, payload) => this.onRelayPacket(i, from, payload),
        changed: (i) => this.onRelayChanged(i),
        peerGone: (_i, key) => { const l = this.byText.get(key); if (l) l.lastError = 'peer not registered at the relay'; },
        reflexive: (family, c) => this.onReflexive(family, c),
        stunAnswer: (family, round, server, c) => this.onStunAnswer(family, round, server, c),
      },
    });
    // listen first: MPyC may connect as soon as `up` prints its line; relays register meanwhile
    this.listeners = new PortLayoutListeners({
      ownIndex: this.cfg.ownIndex,
      parties: this.cfg.parties.length,
      localBase: this.cfg.localBase,
      forwards: this.cfg.forwards ?? [],
      listenHosts: this.cfg.listenHosts ?? ['127.0.0.1', '::1'],
      logger: this.log,
      onConnection: (peerIndex, target, socket) => this.attachLocalSocket(peerIndex, target, socket),
    });
    void this.relays.start(); // never rejects: a relay that does not resolve is WebSocket-only
    this.startPortMapping();
    await this.listeners.start();
    this.log.info({ index: this.cfg.ownIndex, publicKey: ownKey.text, udpPort: this.udp.bound.v4?.port, udpPort6: this.udp.bound.v6?.port,
      candidates: this.localCandidates.map(candidateKey), relays: this.cfg.relays.length, relayOnly: this.cfg.relayOnly }, 'agent started');
    // handshakes with every peer start as soon as a relay registration completes
    // (onRelayChanged), so traffic can flow within one relay round trip
    this.reschedule();
  }

  // ------------------------------------------------------------------ candidates

  private candidatesToSignal(): Candidate[] {
    const list = [...this.localCandidates];
    for (const r of [...this.reflexive.values(), ...(this.portMapped ? [this.portMapped] : [])]) {
      if (!list.some((c) => candidateKey(c) === candidateKey(r))) list.push(r);
    }
    return list;
  }

  /** A router mapping of the IPv4 socket (portmap/), offered to peers as a candidate while it lasts. */
  private startPortMapping(): void {
    const port = this.udp?.bound.v4?.port;
    if (port === undefined || !wantsPortMapping(this.cfg)) return;
    this.portMapper = new PortMapper({
      internalPort: port,
      logger: this.log,
      onChange: (m) => {
        this.portMapped = m ? { address: m.externalAddress, port: m.externalPort, source: 'portmap' } : undefined;
        const now = performance.now();
        for (const l of this.links.values()) l.sendSignals(now);
      },
    });
    this.portMapper.start();
  }

  private onReflexive(family: Family, c: Candidate): void {
    const old = this.reflexive.get(family);
    if (old && candidateKey(old) === candidateKey(c)) return;
    this.log.info({ reflexive: candidateKey(c), family }, 'learned reflexive address by STUN');
    this.reflexive.set(family, c);
    const now = performance.now();
    for (const l of this.links.values()) l.sendSignals(now);
  }

  /** STUN answers of one round compared (nat-type.ts); a new verdict goes to every peer. */
  private onStunAnswer(family: Family, round: number, server: string, c: Candidate): void {
    if (!this.natTypes.observe(family, round, { server, reflexive: candidateKey(c) })) return;
    this.log.info({ family, mapping: this.natTypes.get(family) }, 'NAT mapping behaviour');
    const now = performance.now();
    for (const l of this.links.values()) l.sendSignals(now);
  }

  // ------------------------------------------------------------------ relays

  private onRelayChanged(i: number): void {
    const relays = this.relays!;
    const registered = relays.isRegistered(i);
    this.metrics_.relayRegistered.set(relays.registeredCount());
    const now = performance.now();
    for (const l of this.links.values()) {
      // sessions to relayed peers may have lost packets meanwhile: nudge them
      if (registered && !this.sessions.info(l.key).established) this.sessions.connect(l.key, true);
      l.sendSignals(now); // our relay set changed: tell the peer
      if (l.paths.active.kind === 'relay') this.activeRoute(l);
    }
    this.reschedule();
  }

  private onRelayPacket(i: number, from: PeerKey, payload: Uint8Array): void {
    if (this.relays?.transportOf(i) === 'ws') mark(Stage.received); // a UDP frame was marked on arrival
    const link = this.links.get(from.id);
    const route = link?.relayRoutes[i];
    if (!link || !route) { this.metrics_.drop('relay_from_unknown_key'); return; }
    // no copy: the session layer decrypts in place and the plaintexts it delivers (and
    // the transport keeps) are views of this datagram; safe because dgram and ws hand over
    // a fresh buffer per message that nobody else reads or reuses
    const r = this.sessions.receive(payload, route);
    this.onReceived(r);
    if (r.kind === 'handshake' && r.answered) {
      link.paths.fallBack(performance.now(), 'peer re-handshook through the relay (restarted or lost its path)');
      this.applyPathChanges(link, link.paths.takeChanges());
    }
  }

  // ------------------------------------------------------------------ datagrams

  private onDirectDatagram(b: Uint8Array, from: UdpSource): void {
    if (this.cfg.relayOnly) { this.metrics_.drop('direct_in_relay_only'); return; }
    this.onReceived(this.sessions.receive(b, from.via === undefined ? { kind: 'direct', address: from.address, port: from.port } : { kind: 'direct', address: from.address, port: from.port, via: from.via }));
  }

  /** Bookkeeping of every session datagram's outcome (delivered plaintexts went through deliver). */
  private onReceived(r: ReceiveResult): void {
    if (r.kind === 'dropped') { this.metrics_.drop(`session_${r.reason}`); return; }
    if (r.kind === 'handshake' || r.keepalive) {
      const link = this.links.get(r.peer.id);
      link?.heard(performance.now());
      if (r.kind === 'handshake') this.reschedule();
    }
  }

  /** The route a packet to this peer takes when the session layer leaves the choice to us. */
  private activeRoute(link: PeerLink): Route | null {
    const a = link.paths.active;
    if (a.kind === 'direct') return a;
    const relay = this.relayFor(link);
    if (relay !== link.relayInUse) this.relayRouteChanged(link, relay);
    return relay === undefined ? null : link.relayRoutes[relay]!;
  }

  /** The relay this peer's packets take now (chooseRelay: what it told us, what we heard, who leads). */
  private relayFor(link: PeerLink): number | undefined {
    return this.relays?.pick(link.relayMask, link.lastRelayHeard, link.leadsRelayChoice);
  }

  private relayRouteChanged(link: PeerLink, relay: number | undefined): void {
    const was = link.relayInUse;
    link.relayInUse = relay;
    if (was === undefined || relay === undefined) return; // first choice, or no relay at all: nothing moved
    const name = (i: number): string => this.relays!.addressText(i);
    this.log.info({ peer: link.index, from: 'relay', to: 'relay', fromRelay: name(was), toRelay: name(relay), reason: 'relay lost or the peer moved' }, 'path change');
    this.metrics_.pathChanges.inc({ to: 'relay' });
    link.pathSince = performance.now();
    this.pathChanged(link);
  }

  /** The transport restarts its path state, probing up to what the link's active path could carry. */
  private pathChanged(link: PeerLink): void {
    const a = link.paths.active;
    const relays = this.relays!;
    link.streams.pathChanged(a.kind === 'direct' ? directPathMaxPacket(a.address) : relays.maxPacket(link.relayInUse ?? this.relayFor(link)));
  }

  /**
   * One packet of the peer's transport connection, sealed where it lies: its inner type
   * byte, session header and tag go into the room the transport left around it, and if it
   * is relayed, the SEND header too (transmit recognises this one message by its memory).
   * False when it did not go out now (queued behind a handshake, whose retry is a deadline).
   */
  private sendTransportPacket(key: PeerKey, packet: Uint8Array): boolean {
    const plaintext = transportInnerInPlace(packet);
    this.inPlace = plaintext;
    try {
      return this.sessions.sendInPlace(key, plaintext);
    } finally {
      this.inPlace = null;
    }
  }

  /**
   * The session layer's output, to the route it names (a probe's candidate, or where a
   * handshake initiation came from) or, for null, to the peer's active route. Bytes count
   * as sent only when the socket or the relay client took the packet.
   */
  private transmit(peer: PeerKey, packet: Uint8Array, to: Route | null): void {
    const link = this.links.get(peer.id);
    if (!link) return;
    mark(Stage.sealed, link.index);
    const route = to ?? this.activeRoute(link);
    if (packet[0] === MSG_INITIATION) this.reschedule(); // its retry is a session deadline
    if (!route) { this.metrics_.drop('no_relay_registered'); return; }
    if (!this.sendTo(route, packet, peer)) return;
    mark(Stage.sent, link.index);
    this.metrics_.bytes(route.kind, 'out', packet.length);
    link.bytesSent += packet.length;
  }

  /**
   * Puts one datagram on `route`: the UDP socket, or relay i towards `peer` (a relayed
   * route names the peer itself; so does a cookie reply's, which answers no link yet).
   * False (and counted) when it did not go out.
   */
  private sendTo(route: Route, packet: Uint8Array, peer = route.kind === 'relay' ? route.peer : undefined): boolean {
    if (route.kind === 'direct') {
      if (this.udp?.send(packet, route.address, route.port, route.via)) return true;
      this.metrics_.drop('udp_send_failed');
      return false;
    }
    if (peer && this.relays?.send(route.relay, peer.bytes, packet, this.isSealedInPlace(packet))) return true;
    this.metrics_.drop('relay_not_ready');
    return false;
  }

  /**
   * Whether `packet` is the message sealed around the plaintext sendTransportPacket is
   * sending now: then the relay header room in front of it is ours. Anything else the
   * session layer transmits meanwhile (a handshake it starts, a queued copy) is not.
   */
  private isSealedInPlace(packet: Uint8Array): boolean {
    const p = this.inPlace;
    return p !== null && packet.buffer === p.buffer && packet.byteOffset === p.byteOffset - SESSION_HEADROOM;
  }

  private deliver(peer: PeerKey, plaintext: Uint8Array, from: Route): void {
    const link = this.links.get(peer.id);
    if (!link) return;
    mark(Stage.opened, link.index);
    const now = performance.now();
    const n = plaintext.length + TRANSPORT_OVERHEAD_LEN;
    link.bytesReceived += n;
    this.metrics_.bytes(from.kind, 'in', n);
    link.heard(now);
    link.onPlaintext(plaintext, from, now, this.dropInner);
    this.applyPathChanges(link, link.paths.takeChanges());
  }

  private onSessionEvent(e: SessionEvent): void {
    const link = this.links.get(e.peer.id);
    if (!link) return;
    if (e.type === 'established') {
      this.log.debug({ peer: link.index, initiator: e.initiator }, 'session established');
      link.onEstablished(performance.now());
      // the transport may have backed off while the peer was unreachable: restart its timers
      this.pathChanged(link);
    } else {
      link.lastError = `handshake: no response (${e.droppedPackets} packets dropped)`;
      this.log.warn({ peer: link.index, dropped: e.droppedPackets }, 'handshake timed out; will retry on demand');
    }
    this.reschedule();
  }

  private applyPathChanges(link: PeerLink, changes: readonly PathChange[]): void {
    for (const c of changes) {
      link.pathSince = performance.now();
      const relay = link.relayInUse === undefined ? undefined : this.relays?.addressText(link.relayInUse);
      this.log.info({ peer: link.index, from: describeRoute(c.from), to: describeRoute(c.to), relay, reason: c.reason }, 'path change');
      this.metrics_.pathChanges.inc({ to: c.to.kind });
    }
    if (changes.length === 0) return;
    link.reportPath(performance.now());
    this.pathChanged(link);
    this.reschedule();
  }

  // ------------------------------------------------------------------ the one timer

  private reschedule(): void {
    this.timer.reschedule();
  }

  private nextDeadline(): number {
    let t = Math.min(this.sessions.nextDeadline(), this.relays?.nextDeadline() ?? Infinity);
    for (const l of this.links.values()) t = Math.min(t, l.nextDeadline());
    return t;
  }

  private onDue(now: number): void {
    if (now >= this.sessions.nextDeadline()) this.sessions.tick(now);
    for (const l of this.links.values()) {
      if (now >= l.nextDeadline()) this.applyPathChanges(l, l.poll(now));
    }
    this.relays?.checkUnreachable(now);
  }

  // ------------------------------------------------------------------ surface

  private resolveTarget(t: StreamTarget): { host: string; port: number } | string {
    if (t.kind === 'mpyc') {
      if (t.party !== this.cfg.ownIndex) return `stream for party ${t.party}, but this is party ${this.cfg.ownIndex}`;
      return { host: '127.0.0.1', port: this.cfg.localBase + this.cfg.ownIndex };
    }
    if (!this.cfg.allowedPorts.includes(t.port)) return `port ${t.port} is not in this agent's --allow-port list`;
    return { host: '127.0.0.1', port: t.port };
  }

  attachLocalSocket(peerIndex: number, target: StreamTarget, socket: Socket): void {
    const link = this.byIndex.get(peerIndex);
    if (!link || this.stopped) { socket.destroy(); return; }
    link.streams.attach(target, socket);
    // MPyC listens before it dials out: streams waiting for its listener connect now
    this.connector.kick();
    this.reschedule(); // an offline peer's new local connection has a closing deadline
  }

  status(): AgentStatus {
    return buildStatus({
      cfg: this.cfg, links: [...this.links.values()], sessions: this.sessions, relays: this.relays,
      udp: this.udp?.bound ?? {}, localCandidates: this.localCandidates, reflexive: [...this.reflexive.values()],
      mapping: { v4: this.natTypes.get(4), v6: this.natTypes.get(6) }, portMapping: this.portMapper?.mapping,
      uptimeMs: performance.now() - this.startedAt,
    });
  }

  async metrics(): Promise<string> {
    return this.metrics_.registry.metrics();
  }

  async ping(peerIndex: number, opts: PingOptions = {}): Promise<PingResult> {
    const link = this.byIndex.get(peerIndex);
    if (!link) throw new Error(`no party ${peerIndex} among this agent's peers`);
    const count = opts.count ?? 4;
    const intervalMs = opts.intervalMs ?? 1_000;
    if (!Number.isInteger(count) || count < 1 || count > MAX_PING_COUNT) throw new RangeError(`ping count must be 1..${MAX_PING_COUNT}`);
    if (!(intervalMs >= MIN_PING_INTERVAL_MS)) throw new RangeError(`ping interval must be at least ${MIN_PING_INTERVAL_MS} ms`);
    const samples: PingResult['samples'] = [];
    for (let seq = 0; seq < count && !this.stopped; seq++) {
      if (seq > 0) await new Promise((r) => setTimeout(r, intervalMs));
      const { rttMs, route } = await link.ping(performance.now());
      samples.push({ seq, rttMs, path: route ? routeInfo(route, this.relays) : null });
    }
    return { peerIndex, samples };
  }

  stop(): Promise<void> {
    this.stopping ??= this.shutDown();
    return this.stopping;
  }

  /**
   * Ends within stopGraceMs + ~1 s in every state: stop accepting, let in-flight stream
   * data drain for the grace, then destroy every local connection (a half-closed one in
   * CLOSE-WAIT would otherwise hold server.close() forever) and close every socket.
   */
  private async shutDown(): Promise<void> {
    this.stopped = true;
    this.timer.stop();
    const listenersClosed = this.listeners?.stop() ?? Promise.resolve();
    const grace = this.cfg.stopGraceMs ?? DEFAULT_STOP_GRACE_MS;
    // the router's mapping is deleted meanwhile, bounded by the same grace
    const unmapped = this.portMapper?.close(grace) ?? Promise.resolve();
    const t0 = performance.now();
    while (performance.now() - t0 < grace && [...this.links.values()].some((l) => l.streams.bytesInFlight > 0)) {
      await new Promise((r) => setTimeout(r, 20));
    }
    for (const l of this.links.values()) {
      l.cancelPings();
      l.streams.stop();
    }
    this.connector?.stop();
    this.listeners?.destroyConnections();
    await Promise.race([listenersClosed, new Promise((r) => setTimeout(r, LISTENER_CLOSE_BOUND_MS).unref())]);
    await unmapped;
    this.sessions?.close();
    // before the UDP socket closes: the relays' LEAVEs go out on it
    this.relays?.close();
    await this.udp?.close();
  }
}

/**
 * The cookie mechanism's name of a datagram's source: a direct one's address and port (a
 * cookie proves the sender receives there), a relayed one's sender key as the relay
 * authenticated it (plus the relay: a key is one source per relay).
 */
function sourceBytes(from: Route): Uint8Array {
  if (from.kind === 'direct') return Buffer.from(`d ${from.address} ${from.port}`);
  const key = from.peer?.bytes ?? new Uint8Array(0);
  const out = new Uint8Array(2 + key.length);
  out[0] = 0x72; // 'r'
  out[1] = from.relay;
  out.set(key, 2);
  return out;
}
