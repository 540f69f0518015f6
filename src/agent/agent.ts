// The party daemon's core: one UDP socket for STUN, the relay and direct paths; the Noise
// session layer; per-peer path selection and streams; the MPyC port-layout listeners.
//
//   UDP datagram ─ first byte ─┬ 0x00–0x03 STUN  → StunClient (our reflexive address)
//                              ├ 0x10–0x1F session message, directly from a peer
//                              └ 0x20–0x3F relay frame → RelayClient → "from key K" payload
//   session plaintext (inner.ts) ─┬ TRANSPORT  → the peer's stream connection
//                                 ├ CANDIDATES → path manager
//                                 └ PROBE / PROBE_ACK → path manager
import { createSocket, type Socket as UdpSocket, type RemoteInfo } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { isIPv4 } from 'node:net';
import type { Socket } from 'node:net';
import { SessionManager, TRANSPORT_OVERHEAD_LEN, type SessionEvent } from '../session/index.js';
import { RelayClient, relayWsUrl, type RelayClientState } from '../relay/client.js';
import { StunClient } from '../stun/client.js';
import { looksLikeStun } from '../stun/codec.js';
import { PeerKey } from '../common/peer-key.js';
import { candidateKey, classify, gatherInterfaceCandidates } from './candidates.js';
import { decodeInner, encodeCandidates, encodeProbe, encodeTransportInner, type Candidate } from './inner.js';
import { PeerPaths } from './path.js';
import { PeerStreams } from './streams.js';
import { PortLayoutListeners } from './listeners.js';
import { AgentMetrics } from './metrics.js';
import { mpycCommand } from './session-file.js';
import type { AgentConfig, AgentHandle, AgentStatus, PeerStatus, StreamTarget } from './types.js';

/** tick for path probes and session timers */
const TICK_MS = 50;
/** give up on a relay (and try the next in the session file) after this long unregistered */
const RELAY_FAILOVER_MS = 4_000;
/** the same once we had been registered: the relay was then already silent for 2.5 keepalives */
const RELAY_LOST_FAILOVER_MS = 1_500;
/** re-send our candidates this often while a peer has no direct path */
const CANDIDATE_RESEND_MS = 3_000;
/** re-run STUN this often (the NAT mapping may change) */
const STUN_INTERVAL_MS = 60_000;

interface Peer {
  index: number;
  name?: string;
  key: PeerKey;
  paths: PeerPaths;
  streams: PeerStreams;
  bytesSent: number;
  bytesReceived: number;
  lastError?: string;
  lastCandidatesSentAt: number;
  pathSince: number;
}

/** where a session datagram came from or goes to */
type Route = { kind: 'relay' } | { kind: 'direct'; address: string; port: number };
const RELAY: Route = { kind: 'relay' };

export class Agent implements AgentHandle {
  private udp?: UdpSocket;
  private udpPort = 0;
  private sessions!: SessionManager<Route>;
  /** by PeerKey.id */
  private readonly peers = new Map<string, Peer>();
  private readonly byIndex = new Map<number, Peer>();
  private readonly byText = new Map<string, Peer>();
  private relay?: RelayClient;
  private relayIndex = 0;
  private relayHost?: string; // resolved IPv4 of the current relay
  private relayUnregisteredSince = 0;
  /** the current relay client has been registered at least once */
  private relayWasRegistered = false;
  private stun?: StunClient;
  private reflexive?: Candidate;
  private localCandidates: Candidate[] = [];
  private listeners?: PortLayoutListeners;
  private ticker?: NodeJS.Timeout;
  private stunTimer?: NodeJS.Timeout;
  private readonly startedAt = performance.now();
  private stopped = false;
  readonly metrics_: AgentMetrics;

  constructor(private readonly cfg: AgentConfig) {
    this.metrics_ = new AgentMetrics();
  }

  private get log() { return this.cfg.logger; }

  async start(): Promise<void> {
    const own = this.cfg.parties[this.cfg.ownIndex]!;
    const peerKeys: PeerKey[] = [];
    const ownKey = PeerKey.fromBytes(this.cfg.keyPair.publicKey);
    for (const p of this.cfg.parties) {
      if (p.index === this.cfg.ownIndex) continue;
      const key = PeerKey.fromText(p.publicKey, `party ${p.index} key`);
      peerKeys.push(key);
      const peer: Peer = {
        index: p.index, name: p.name, key,
        paths: new PeerPaths(this.cfg.relayOnly),
        streams: undefined as unknown as PeerStreams,
        bytesSent: 0, bytesReceived: 0, lastCandidatesSentAt: -Infinity, pathSince: performance.now(),
      };
      peer.streams = new PeerStreams({
        side: ownKey.compare(key) < 0 ? 0 : 1,
        sendDatagram: (d) => this.sessions.send(key, encodeTransportInner(d)),
        resolveTarget: (t) => this.resolveTarget(peer, t),
        logger: this.log.child({ peer: p.index }),
        idleTimeoutMs: this.cfg.streamIdleTimeoutMs ?? 3_600_000,
      });
      this.peers.set(key.id, peer);
      this.byText.set(key.text, peer);
      this.byIndex.set(p.index, peer);
    }
    this.sessions = new SessionManager<Route>({
      staticKey: this.cfg.keyPair,
      peers: peerKeys,
      transmit: (peer, packet, to) => this.transmit(peer, packet, to),
      deliver: (peer, plaintext, from) => this.deliver(peer, plaintext, from),
      onEvent: (e) => this.onSessionEvent(e),
    });

    await this.bindUdp();
    this.localCandidates = this.cfg.relayOnly ? [] : gatherInterfaceCandidates(this.udpPort, this.cfg.udpBind.host);
    await this.useRelay(0);
    this.listeners = new PortLayoutListeners({
      ownIndex: this.cfg.ownIndex,
      parties: this.cfg.parties.length,
      localBase: this.cfg.localBase,
      forwards: this.cfg.forwards ?? [],
      listenHosts: this.cfg.listenHosts ?? ['127.0.0.1', '::1'],
      logger: this.log,
      onConnection: (peerIndex, target, socket) => this.attachLocalSocket(peerIndex, target, socket),
    });
    await this.listeners.start();
    this.ticker = setInterval(() => this.tick(), TICK_MS);
    this.log.info({ index: this.cfg.ownIndex, publicKey: own.publicKey, udpPort: this.udpPort,
      candidates: this.localCandidates.map(candidateKey), relayOnly: this.cfg.relayOnly }, 'agent started');
    // handshakes with every peer start as soon as the relay registration completes
    // (onRelayState), so traffic can flow within one relay round trip
  }

  private bindUdp(): Promise<void> {
    return new Promise((resolve, reject) => {
      const s = createSocket({ type: 'udp4' });
      s.once('error', (err) => reject(new Error(`cannot bind UDP ${this.cfg.udpBind.host}:${this.cfg.udpBind.port}: ${err.message}`)));
      s.bind(this.cfg.udpBind.port, this.cfg.udpBind.host, () => {
        s.removeAllListeners('error');
        s.on('error', (err) => this.log.warn({ err: err.message }, 'UDP socket error'));
        s.on('message', (msg, rinfo) => this.onUdp(msg, rinfo));
        this.udpPort = s.address().port;
        this.udp = s;
        resolve();
      });
    });
  }

  // ------------------------------------------------------------------ relay

  private async useRelay(i: number): Promise<void> {
    this.relay?.close();
    this.relayIndex = i % this.cfg.relays.length;
    const r = this.cfg.relays[this.relayIndex]!;
    try {
      this.relayHost = isIPv4(r.host) ? r.host : (await lookup(r.host, { family: 4 })).address;
    } catch (err) {
      this.log.warn({ host: r.host, err: String(err) }, 'cannot resolve relay host; WebSocket only');
      this.relayHost = undefined;
    }
    const host = this.relayHost;
    const udpAllowed = host !== undefined && this.cfg.relayTransport !== 'ws';
    const wsAllowed = r.httpPort !== undefined && this.cfg.relayTransport !== 'udp';
    const transport = udpAllowed && wsAllowed ? 'auto' : udpAllowed ? 'udp' : 'ws';
    const client = new RelayClient({
      relayKey: r.publicKey,
      keyPair: this.cfg.keyPair,
      transport,
      sendUdp: udpAllowed ? (f) => this.udp?.send(f, r.udpPort, host) : undefined,
      wsUrl: wsAllowed ? relayWsUrl(r.host, r.httpPort!) : undefined,
      keepaliveMs: 2_000,
      udpFallbackMs: 1_000,
      logger: this.log.child({ relay: `${r.host}:${r.udpPort}` }),
    });
    client.on('packet', (fromKey, payload) => this.onRelayPacket(fromKey, payload));
    client.on('state', (s, t) => this.onRelayState(s, t));
    client.on('peerGone', (key) => {
      const p = this.peerByText(key);
      if (p) p.lastError = 'peer not registered at the relay';
    });
    this.relay = client;
    this.relayUnregisteredSince = performance.now();
    this.relayWasRegistered = false;
    client.start();
    if (host) {
      this.stun?.close();
      this.stun = new StunClient({ send: (d) => this.udp?.send(d, r.udpPort, host), autoTimers: true });
    }
  }

  private onRelayState(s: RelayClientState, t: string | undefined): void {
    this.log.info({ state: s, transport: t, relay: this.relayAddress() }, 'relay state');
    if (s === 'registered') {
      this.relayUnregisteredSince = Infinity;
      this.relayWasRegistered = true;
      this.metrics_.relayRegistered.set(1);
      if (t === 'udp') this.runStun();
      // sessions to peers on the relay path may have lost packets meanwhile: nudge them
      for (const p of this.peers.values()) if (!this.sessions.info(p.key).established) this.sessions.connect(p.key, true);
    } else if (this.relayUnregisteredSince === Infinity) {
      this.relayUnregisteredSince = performance.now();
      this.metrics_.relayRegistered.set(0);
    }
  }

  private runStun(): void {
    if (this.cfg.relayOnly || !this.stun) return;
    const stun = this.stun;
    stun.request().then((addr) => {
      const c = { address: addr.address, port: addr.port };
      if (!this.reflexive || candidateKey(this.reflexive) !== candidateKey(c)) {
        this.log.info({ reflexive: candidateKey(c) }, 'learned reflexive address by STUN');
        this.reflexive = c;
        for (const p of this.peers.values()) this.sendCandidates(p, true);
      }
    }).catch((err: unknown) => this.log.debug({ err: String(err) }, 'STUN failed'));
    if (this.stunTimer) clearTimeout(this.stunTimer);
    this.stunTimer = setTimeout(() => this.runStun(), STUN_INTERVAL_MS);
    this.stunTimer.unref();
  }

  private relayAddress(): string {
    const r = this.cfg.relays[this.relayIndex]!;
    return `${r.publicKey}@${r.host}:${r.udpPort}${r.httpPort ? `/${r.httpPort}` : ''}`;
  }

  // ------------------------------------------------------------------ datagrams

  private onUdp(msg: Buffer, rinfo: RemoteInfo): void {
    const b = new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength);
    const first = b[0] ?? 0xff;
    if (first <= 0x03) {
      if (looksLikeStun(b)) this.stun?.handleDatagram(b);
      else this.metrics_.drop('stun_malformed');
    } else if (first >= 0x10 && first <= 0x1f) {
      if (this.cfg.relayOnly) { this.metrics_.drop('direct_in_relay_only'); return; }
      const r = this.sessions.receive(b, { kind: 'direct', address: rinfo.address, port: rinfo.port });
      if (r.kind === 'dropped') this.metrics_.drop(`session_${r.reason}`);
    } else if (first >= 0x20 && first <= 0x3f) {
      const relay = this.cfg.relays[this.relayIndex]!;
      if (rinfo.address === this.relayHost && rinfo.port === relay.udpPort) this.relay?.handleDatagram(b);
      else this.metrics_.drop('relay_frame_from_stranger');
    } else {
      this.metrics_.drop('unknown_type');
    }
  }

  private onRelayPacket(fromKey: string, payload: Uint8Array): void {
    const p = this.peerByText(fromKey);
    if (!p) { this.metrics_.drop('relay_from_unknown_key'); return; }
    // no copy: the session layer copies whatever it keeps from the datagram
    const r = this.sessions.receive(payload, RELAY);
    if (r.kind === 'dropped') this.metrics_.drop(`session_${r.reason}`);
    else if (r.kind === 'handshake' && r.answered) {
      p.paths.fallBack(performance.now(), 'peer re-handshook through the relay (restarted or lost its path)');
      this.applyPathChanges(p);
    }
  }

  /**
   * The session layer's output, to the route it names (a probe's candidate, or where a
   * handshake initiation came from) or, for null, to the peer's active path.
   */
  private transmit(peerKey: PeerKey, packet: Uint8Array, to: Route | null): void {
    const p = this.peers.get(peerKey.id);
    if (!p) return;
    const route = to ?? p.paths.active;
    if (route.kind === 'direct') this.udp?.send(packet, route.port, route.address);
    else if (!this.relay?.send(peerKey.bytes, packet)) this.metrics_.drop('relay_not_ready');
    this.metrics_.bytes(route.kind, 'out', packet.length);
    p.bytesSent += packet.length;
  }

  private deliver(peerKey: PeerKey, plaintext: Uint8Array, src: Route): void {
    const p = this.peers.get(peerKey.id);
    if (!p) return;
    const now = performance.now();
    p.bytesReceived += plaintext.length + TRANSPORT_OVERHEAD_LEN;
    this.metrics_.bytes(src.kind, 'in', plaintext.length + TRANSPORT_OVERHEAD_LEN);
    if (src.kind === 'direct') p.paths.onDirectPacket(src, now);
    const inner = decodeInner(plaintext);
    switch (inner.type) {
      case 'transport':
        p.streams.receive(inner.packet);
        break;
      case 'candidates':
        p.paths.addSignalled(inner.candidates, now);
        break;
      case 'probe':
        // answer on the path the probe came in on; probes never travel via the relay
        if (src.kind === 'direct' && !this.cfg.relayOnly) this.sessions.send(p.key, encodeProbe('probeAck', inner.id), src);
        break;
      case 'probeAck':
        if (src.kind === 'direct') p.paths.onProbeAck(inner.id, src, now);
        break;
      case 'invalid':
        this.metrics_.drop(inner.reason);
        break;
    }
    this.applyPathChanges(p);
  }

  private sendCandidates(p: Peer, force = false): void {
    if (this.cfg.relayOnly) return;
    const now = performance.now();
    if (!force && now - p.lastCandidatesSentAt < CANDIDATE_RESEND_MS) return;
    if (!this.sessions.info(p.key).established) return;
    const list = [...this.localCandidates];
    if (this.reflexive && !list.some((c) => candidateKey(c) === candidateKey(this.reflexive!))) list.push(this.reflexive);
    p.lastCandidatesSentAt = now;
    this.sessions.send(p.key, encodeCandidates(list));
  }

  private onSessionEvent(e: SessionEvent): void {
    const p = this.peers.get(e.peer.id);
    if (!p) return;
    if (e.type === 'established') {
      this.log.debug({ peer: p.index, initiator: e.initiator }, 'session established');
      p.lastError = undefined;
      this.sendCandidates(p, true);
      // the transport may have backed off while the peer was unreachable: restart its timers
      p.streams.pathChanged();
    } else {
      p.lastError = `handshake: no response (${e.droppedPackets} packets dropped)`;
      this.log.warn({ peer: p.index, dropped: e.droppedPackets }, 'handshake timed out; will retry on demand');
    }
  }

  private applyPathChanges(p: Peer): void {
    for (const c of p.paths.takeChanges()) {
      p.pathSince = performance.now();
      const describe = (a: typeof c.to): string => (a.kind === 'relay' ? 'relay' : `direct ${a.address}:${a.port}`);
      this.log.info({ peer: p.index, from: describe(c.from), to: describe(c.to), reason: c.reason }, 'path change');
      this.metrics_.pathChanges.inc({ to: c.to.kind });
      p.streams.pathChanged();
    }
  }

  // ------------------------------------------------------------------ timers

  private tick(): void {
    if (this.stopped) return;
    const now = performance.now();
    if (now >= this.sessions.nextDeadline()) this.sessions.tick(now);
    for (const p of this.peers.values()) {
      if (now >= p.paths.nextDeadline()) {
        for (const a of p.paths.poll(now)) this.sessions.send(p.key, encodeProbe('probe', a.id), { kind: 'direct', ...a.to });
      }
      this.applyPathChanges(p);
      if (p.paths.active.kind === 'relay') this.sendCandidates(p);
    }
    const failoverAfter = this.relayWasRegistered ? RELAY_LOST_FAILOVER_MS : RELAY_FAILOVER_MS;
    if (this.cfg.relays.length > 1 && now - this.relayUnregisteredSince > failoverAfter) {
      const next = (this.relayIndex + 1) % this.cfg.relays.length;
      this.log.warn({ from: this.relayAddress(), to: this.cfg.relays[next]!.host }, 'relay unreachable; failing over');
      void this.useRelay(next);
    }
  }

  // ------------------------------------------------------------------ surface

  /** the relay client names peers by key text */
  private peerByText(text: string): Peer | undefined {
    return this.byText.get(text);
  }

  private resolveTarget(p: Peer, t: StreamTarget): { host: string; port: number } | string {
    if (t.kind === 'mpyc') {
      if (t.party !== this.cfg.ownIndex) return `stream for party ${t.party}, but this is party ${this.cfg.ownIndex}`;
      return { host: '127.0.0.1', port: this.cfg.localBase + this.cfg.ownIndex };
    }
    if (!this.cfg.allowedPorts.includes(t.port)) return `port ${t.port} is not in this agent's --allow-port list`;
    void p;
    return { host: '127.0.0.1', port: t.port };
  }

  attachLocalSocket(peerIndex: number, target: StreamTarget, socket: Socket): void {
    const p = this.byIndex.get(peerIndex);
    if (!p || this.stopped) { socket.destroy(); return; }
    p.streams.attach(target, socket);
  }

  status(): AgentStatus {
    const now = performance.now();
    const peers: PeerStatus[] = [];
    for (const p of [...this.peers.values()].sort((a, b) => a.index - b.index)) {
      const info = this.sessions.info(p.key);
      const a = p.paths.active;
      const st = p.streams.connection.stats();
      const path = !info.established ? null
        : a.kind === 'direct' ? { kind: 'direct' as const, address: `${a.address}:${a.port}`, lan: classify(a.address) !== 'public' }
          : { kind: 'relay' as const, relay: this.relayAddress(), transport: this.relay?.transport ?? 'udp' };
      peers.push({
        index: p.index, name: p.name, publicKey: p.key.text,
        state: !info.established ? 'connecting' : a.kind === 'direct' ? 'direct' : 'relay',
        path,
        rttMs: info.established && st.packetsReceived > 0 ? st.smoothedRttMs : undefined,
        bytesSent: p.bytesSent, bytesReceived: p.bytesReceived,
        handshakeAgeMs: info.handshakeAgeMs,
        lastError: info.lastError ?? p.lastError,
        streams: st.openStreams,
        pathAgeMs: now - p.pathSince,
      });
    }
    return {
      ownIndex: this.cfg.ownIndex,
      publicKey: PeerKey.fromBytes(this.cfg.keyPair.publicKey).text,
      mpycCommand: mpycCommand(this.cfg.parties.length, this.cfg.ownIndex, this.cfg.localBase),
      relay: { address: this.relayAddress(), transport: this.relay?.transport ?? null, registered: this.relay?.state === 'registered' },
      reflexiveAddress: this.reflexive ? candidateKey(this.reflexive) : undefined,
      localAddresses: this.localCandidates.map(candidateKey),
      udpPort: this.udpPort,
      peers,
      uptimeMs: now - this.startedAt,
    };
  }

  async metrics(): Promise<string> {
    for (const p of this.peers.values()) {
      const st = p.streams.connection.stats();
      this.metrics_.observePeer(String(p.index), p.paths.active.kind, st.smoothedRttMs, st.packetsRetransmitted);
    }
    return this.metrics_.registry.metrics();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.ticker) clearInterval(this.ticker);
    if (this.stunTimer) clearTimeout(this.stunTimer);
    await this.listeners?.stop();
    for (const p of this.peers.values()) p.streams.stop();
    this.sessions?.close();
    this.stun?.close();
    this.relay?.close();
    await new Promise<void>((r) => (this.udp ? this.udp.close(() => r()) : r()));
  }
}
