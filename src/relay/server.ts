// mpyc-relay server: STUN + registration + forwarding over UDP and WebSocket, /metrics and
// /healthz over HTTP(S) (docs/protocol/relay.md, docs/relay.md). Every frame is decoded by
// wire.ts; frames that change an agent's state are authenticated (control-auth.ts); every
// budget lives in limits.ts; the agent table in agents.ts; the HTTP port in http-front.ts.
import type * as dgram from 'node:dgram';
import type * as http from 'node:http';
import { WebSocket } from 'ws';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { HandshakeState, type KeyPair } from '../noise/index.js';
import { PeerKey } from '../common/peer-key.js';
import { answerBindingRequest, stunAddressOf, type StunAddress } from '../stun/codec.js';
import { advertisedAddresses, stunEndpoints, type StunEndpoints } from './stun-other.js';
import { DEFAULT_LIMITS } from './limit-defaults.js';
import {
  FRAME_ACCEPT_ACK, FRAME_ACCEPT_FROM, FRAME_HELLO, FRAME_KEY_CONFLICT, FRAME_LEAVE, FRAME_PEER_GONE, FRAME_PING,
  FRAME_RECV, FRAME_REGISTER, FRAME_RESTARTING, FRAME_SEND, KEY_SIZE, NOISE_PROTOCOL,
  REJECT_FULL, REJECT_NOT_ALLOWED, SEND_HEADER_SIZE, DEFAULT_MAX_PAYLOAD, STATUS_REGISTERED, STATUS_REJECTED,
  RECV_OFFSET_IN_SEND, REG_TOKEN_SIZE, acceptAckBody, dataFrameProblem, decodeFrame, encodeChallenge, encodeNotRegistered,
  encodePong, encodeRegistered, encodeRegisteredPayload, isRelayFrame, registrationPrologue, tokenBytes, tokenMatches, tokenWords,
  type RelayFrame,
} from './wire.js';
import { CookieJar } from './cookie.js';
import { controlKeysOf } from './control-auth.js';
import { AgentTable, type Agent, type WsConnRef } from './agents.js';
import { SourceTable, frameCost, newBucket, sourceKey, take, type Bucket, type Rate } from './limits.js';
import { HttpFront, type HttpLimits } from './http-front.js';
import { RelayCounters, createRelayMetrics, type DropReason, type RegFailure } from './metrics.js';
import { reusePortSocket, snapshot, type ClusterLink, type ClusterMessage } from './cluster.js';
import { createLobbyService, type LobbyOption, type LobbyService } from '../lobby/http.js';
import { createUdpSocket } from '../common/udp-socket.js';

export interface HostPort { host: string; port: number }

/** Every limit of the relay; defaults and reasons in docs/relay.md ("Limits"). */
export interface RelayLimits extends HttpLimits {
  /** per-agent forwarding rate, packets/s, and burst */
  ratePps: number;
  burst: number;
  /** forwarding rate of one source address (all its agents), packets/s; 0 = unlimited */
  sourceRatePps: number;
  /** what one destination receives from all senders together, packets/s; 0 = unlimited */
  destRatePps: number;
  /** the whole relay, packets/s; 0 = unlimited */
  globalRatePps: number;
  /** registration handshakes (DH) per source address per second, burst 2x; 0 = unlimited */
  handshakeRatePerSource: number;
  /** registration handshakes per second for the whole relay, burst 1x; 0 = unlimited */
  handshakeRateGlobal: number;
  /** STUN responses per source address per second, burst 2x; 0 = unlimited */
  stunRatePerSource: number;
  /** source addresses remembered at once (beyond: one shared overflow budget) */
  maxSources: number;
  /** WebSocket connections that have not registered within this are closed */
  wsRegisterTimeoutMs: number;
}

export interface RelayServerOptions extends Partial<RelayLimits> {
  keyPair: KeyPair;
  udp: HostPort;
  /** omit to run without HTTP/WebSocket */
  http?: HostPort;
  /** PEM certificate chain and key for the HTTP port: https:// and wss:// */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** base64 keys allowed to register; undefined = open relay */
  allow?: Set<string>;
  maxPayload?: number;
  maxAgents?: number;
  keepaliveS?: number;
  /** registrations expire after this long without a frame from the agent (default 35 s) */
  expiryS?: number;
  /** per-destination WebSocket queue (in 1441-byte packets: limits.ts frameCost) and the bufferedAmount that starts queueing */
  wsQueueFrames?: number;
  wsHighWater?: number;
  logger?: Logger;
  /** run as one worker of a cluster sharing the ports (cluster.ts); metrics show the sums */
  cluster?: ClusterLink;
  /** lobbies on the HTTP port (docs/protocol/lobby.md): limits, or false for none (default: on) */
  lobby?: LobbyOption;
  /** a second UDP port on the UDP host that answers STUN only (stun-other.ts); 0 = any free
   *  port; omit for none */
  stunAltPort?: number;
  /** a failure to bind stunAltPort is logged (warn) and the relay runs without it */
  stunAltOptional?: boolean;
  /** the relay's public IP addresses, for OTHER-ADDRESS (default: the UDP host unless a wildcard) */
  publicAddresses?: string[];
}

export { DEFAULT_LIMITS };

interface WsConn extends WsConnRef {
  ws: WebSocket;
  id: number;
  remote: string;
  queue: Buffer[];
  /** what `queue` holds in 1441-byte packets (frameCost): bounded by wsQueueFrames */
  queuedCost: number;
  control: Uint8Array[];
  openedAt: number;
}

type Reply = (frame: Uint8Array) => void;
/** Where a frame came from: the cookie's source string, the agent's place and address. */
interface Origin {
  place: string;
  transport: 'udp' | 'ws';
  address: string;
  port: number;
  conn: WsConn | undefined;
  reply: Reply;
}

const CONTROL_QUEUE = 16;
/** PEER_GONE notices per second to one sender: enough for a few stale peers, not a flood */
const PEER_GONE_RATE: Rate = { perS: 10, burst: 10 };
/** NOT_REGISTERED replies per second relay-wide: they answer spoofable frames */
const NOT_REGISTERED_RATE: Rate = { perS: 100, burst: 100 };
/** a cluster accept set still unconfirmed after this is forgotten (a worker died; the agent retransmits) */
const ACCEPT_CONFIRM_MS = 5000;
/** a conflict is logged at most this often per key */
const CONFLICT_LOG_MS = 60_000;

/** An agent's registration as its log lines name it. */
const whereIs = (a: Agent): { key: string; transport: 'udp' | 'ws'; address: string; port: number } =>
  ({ key: a.key.text, transport: a.transport, address: a.address, port: a.port });

export class RelayServer {
  /** this process's counters */
  readonly counters = new RelayCounters();
  /** what /metrics shows: this process's counters, or in a cluster the sums of all workers */
  readonly shown: RelayCounters;
  readonly metrics: Registry;
  readonly publicKey: string;
  private readonly o: Required<Omit<RelayServerOptions, 'allow' | 'http' | 'logger' | 'tls' | 'cluster' | 'lobby'>> & Pick<RelayServerOptions, 'http' | 'logger' | 'tls'>;
  private readonly lobby: LobbyService | undefined;
  private allow: Set<string> | undefined;
  private readonly cookies: CookieJar;
  private readonly cluster: ClusterLink | undefined;
  /** cluster: owner worker -> keys of its agents seen here since the last sweep */
  private readonly seenRemote = new Map<number, Set<string>>();
  private readonly agents: AgentTable;
  private readonly sources: SourceTable;
  private readonly rates: { agent: Rate; source: Rate; dest: Rate; global: Rate; hsGlobal: Rate };
  private readonly globalBucket: Bucket;
  private readonly hsGlobalBucket: Bucket;
  private readonly notRegBucket: Bucket;
  private readonly wsConns = new Set<WsConn>();
  private readonly backlogged = new Set<WsConn>();
  /** cluster: accept sets waiting for the other workers' confirmation before ACCEPT_ACK, by seq */
  private readonly acceptAcks = new Map<number, { agent: Agent; counter: number; confirmed: number; expected: number; at: number }>();
  /** cluster: each agent's latest waiting accept set (a newer one replaces it) */
  private readonly acceptAckOf = new Map<string, number>();
  private nextAcceptSeq = 1;
  /** key id -> when a conflict was last logged */
  private readonly conflictLogged = new Map<string, number>();
  private nextConnId = 1;
  private udpSock: dgram.Socket | undefined;
  private stunAltSock: dgram.Socket | undefined;
  private stunOther: StunEndpoints = { fromMain: {}, fromAlt: {} };
  private front: HttpFront | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private drainTimer: NodeJS.Timeout | undefined;
  private stopping = false;
  private readonly log: Logger | undefined;

  constructor(opts: RelayServerOptions) {
    const d = DEFAULT_LIMITS;
    const rate = opts.ratePps ?? d.ratePps;
    this.o = {
      ...d, ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)),
      keyPair: opts.keyPair, udp: opts.udp, http: opts.http, logger: opts.logger, tls: opts.tls,
      ratePps: rate, burst: opts.burst ?? Math.max(1, Math.floor(rate / 2)),
      maxPayload: Math.min(opts.maxPayload ?? DEFAULT_MAX_PAYLOAD, DEFAULT_MAX_PAYLOAD), maxAgents: opts.maxAgents ?? 100_000,
      keepaliveS: opts.keepaliveS ?? 10, expiryS: opts.expiryS ?? 35,
      wsQueueFrames: opts.wsQueueFrames ?? 256, wsHighWater: opts.wsHighWater ?? 256 * 1024,
    } as RelayServer['o'];
    const o = this.o;
    const now = performance.now();
    this.rates = {
      agent: { perS: o.ratePps, burst: o.burst },
      source: { perS: o.sourceRatePps, burst: Math.max(1, o.sourceRatePps / 2) },
      dest: { perS: o.destRatePps, burst: Math.max(1, o.destRatePps / 2) },
      global: { perS: o.globalRatePps, burst: Math.max(1, o.globalRatePps / 10) },
      hsGlobal: { perS: o.handshakeRateGlobal, burst: Math.max(1, o.handshakeRateGlobal) },
    };
    this.sources = new SourceTable({
      handshake: { perS: o.handshakeRatePerSource, burst: Math.max(1, 2 * o.handshakeRatePerSource) },
      stun: { perS: o.stunRatePerSource, burst: Math.max(1, 2 * o.stunRatePerSource) },
      forward: this.rates.source,
    }, o.maxSources, now);
    this.globalBucket = newBucket(this.rates.global, now);
    this.hsGlobalBucket = newBucket(this.rates.hsGlobal, now);
    this.notRegBucket = newBucket(NOT_REGISTERED_RATE, now);
    this.cluster = opts.cluster;
    this.cookies = new CookieJar(10, 500_000, opts.cluster?.cookieSecret);
    this.shown = opts.cluster ? new RelayCounters() : this.counters;
    this.agents = new AgentTable((a, replaced) => {
      a.ctl?.destroy();
      // a registration replaced by a newer one of the same key here needs no 'del': the
      // 'add' that follows replaces it at every worker, while a 'del' first would leave the
      // others a moment without the key (its packets dropped unregistered / no_peer there)
      if (a.owner === undefined && !replaced) this.cluster?.send({ t: 'del', from: this.cluster.workerId, key: a.key.text, place: a.place });
    });
    this.allow = opts.allow;
    this.log = opts.logger;
    this.publicKey = PeerKey.fromBytes(opts.keyPair.publicKey).text;
    this.metrics = createRelayMetrics(this.shown, {
      agents: () => ({ udp: this.agents.udpCount, ws: this.agents.wsCount }),
      queueDepth: () => { let n = 0; for (const c of this.wsConns) n += c.queue.length; return n; },
    });
    this.lobby = createLobbyService(opts.lobby, opts.http !== undefined, this.metrics);
  }

  /** Bind sockets. Resolves with the actual ports (port 0 = ephemeral). */
  async start(): Promise<{ udpPort: number; httpPort: number | undefined; stunAltPort: number | undefined }> {
    const udp = await this.bindUdp(this.o.udp.port, 8 << 20, (msg, rinfo) => this.onUdp(msg, rinfo.address, rinfo.port), this.cluster?.udpReusePort);
    this.udpSock = udp;
    let stunAltPort: number | undefined;
    if (this.o.stunAltPort !== undefined) {
      // STUN only: small buffers, every other datagram is unknown_type
      const alt: dgram.Socket | undefined = await this.bindUdp(this.o.stunAltPort, 1 << 18, (msg, rinfo) => {
        if (msg.length > 0 && msg[0]! <= 0x03) this.onStun(msg, rinfo.address, rinfo.port, this.stunOther.fromAlt, alt!);
        else this.drop('unknown_type');
      }).catch((err: NodeJS.ErrnoException) => {
        if (!this.o.stunAltOptional) throw err;
        this.o.logger?.warn({ port: this.o.stunAltPort, err: err.code ?? err.message },
          `second STUN port ${this.o.stunAltPort} unavailable (${err.code ?? err.message}): agents with only this relay cannot learn their NAT type; free it, or set --stun-alt-port to another port or 0`);
        return undefined;
      });
      if (alt) {
        this.stunAltSock = alt;
        stunAltPort = alt.address().port;
        this.stunOther = stunEndpoints(advertisedAddresses(this.o.udp.host, this.o.publicAddresses), udp.address().port, stunAltPort);
      }
    }
    let httpPort: number | undefined;
    if (this.o.http) {
      const o = this.o;
      this.front = new HttpFront({
        host: o.http!.host, port: o.http!.port, tls: o.tls, maxMessageBytes: SEND_HEADER_SIZE + o.maxPayload,
        maxConnections: o.maxConnections, maxConnectionsPerSource: o.maxConnectionsPerSource,
        headersTimeoutMs: o.headersTimeoutMs, idleTimeoutMs: o.idleTimeoutMs, sources: this.sources,
        refused: (cap) => { this.counters.httpRefused[cap]++; },
        accepting: () => !this.stopping,
        onWebSocket: (ws, remote) => this.onWsConnection(ws, remote),
        onRequest: (req, res) => this.onHttp(req, res),
      });
      httpPort = await this.front.start();
    }
    this.sweepTimer = setInterval(() => this.sweep(), 1000);
    this.sweepTimer.unref();
    this.cluster?.onMessage((m) => { try { this.onClusterMessage(m); } catch (err) { this.handlerError(err, 'cluster'); } });
    return { udpPort: udp.address().port, httpPort, stunAltPort };
  }

  /** `reusePort`: a worker of a cluster binds its own socket on the relay's port (cluster.ts, SO_REUSEPORT) */
  private async bindUdp(port: number, buffers: number, onMessage: (msg: Buffer, rinfo: dgram.RemoteInfo) => void, reusePort?: number): Promise<dgram.Socket> {
    const s = reusePort !== undefined ? await reusePortSocket(this.o.udp.host, reusePort, buffers)
      : createUdpSocket({ type: this.o.udp.host.includes(':') ? 'udp6' : 'udp4', recvBufferSize: buffers, sendBufferSize: buffers });
    s.on('message', (msg, rinfo) => { try { onMessage(msg, rinfo); } catch (err) { this.handlerError(err, 'UDP'); } });
    s.on('error', (err) => this.log?.error({ err: err.message, port }, 'UDP socket error'));
    if (reusePort !== undefined) return s;
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind(port, this.o.udp.host, () => { s.off('error', reject); resolve(); });
    });
    return s;
  }

  /** Replace the allow-list (SIGHUP reload); evicts registered agents no longer allowed. */
  setAllowList(allow: Set<string> | undefined): void {
    this.allow = allow;
    if (!allow) return;
    // each worker of a cluster evicts its own agents (and tells the others)
    for (const a of this.agents.values()) if (a.ctl && !allow.has(a.key.text)) this.agents.remove(a, true);
  }

  get agentCount(): number { return this.agents.size; }
  /** open HTTP/WebSocket TCP connections */
  get httpConnections(): number { return this.front?.connections ?? 0; }
  /** source addresses with remembered budgets */
  get sourceCount(): number { return this.sources.size; }

  /** Is this key registered, and over which transport? (tests, status) */
  lookup(key: PeerKey | string): { transport: 'udp' | 'ws'; address: string; port: number; accepting: number | undefined } | undefined {
    const k = typeof key === 'string' ? PeerKey.fromText(key) : key;
    const a = this.agents.byKey.get(k.id);
    return a && { transport: a.transport, address: a.address, port: a.port, accepting: a.accept?.size };
  }

  /**
   * Graceful stop: tell every agent RESTARTING (authenticated), then close sockets.
   * `notify=false` for an abrupt stop (tests of client recovery).
   */
  async stop(notify = true): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (notify) {
      for (const a of this.agents.values()) if (a.ctl) this.sendControl(a, a.ctl.seal(FRAME_RESTARTING));
      await new Promise((r) => setTimeout(r, 50));
    }
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    if (this.drainTimer) clearInterval(this.drainTimer);
    this.lobby?.close();
    for (const c of this.wsConns) c.ws.terminate();
    this.wsConns.clear();
    for (const a of this.agents.values()) this.agents.remove(a, false);
    await this.front?.stop();
    for (const s of [this.udpSock, this.stunAltSock]) await new Promise<void>((r) => { try { if (s) s.close(() => r()); else r(); } catch { r(); } });
  }

  // ---------------- UDP ----------------

  private onUdp(msg: Buffer, address: string, port: number): void {
    try {
      const t = msg.length > 0 ? msg[0]! : 0xff;
      if (t === FRAME_SEND) {
        const src = this.agents.udp(address, port);
        if (src === undefined) { this.drop('unregistered'); this.notRegistered((f) => this.udpSend(f, port, address)); return; }
        this.forward(src, msg);
        return;
      }
      if (t <= 0x03) { this.onStun(msg, address, port, this.stunOther.fromMain, this.udpSock!); return; }
      if (isRelayFrame(msg)) {
        this.onControl(msg, this.agents.udp(address, port), {
          place: `u${address}|${port}`, transport: 'udp', address, port, conn: undefined,
          reply: (f) => this.udpSend(f, port, address),
        });
        return;
      }
      this.drop('unknown_type');
    } catch (err) {
      this.handlerError(err, 'UDP');
    }
  }

  /** A STUN datagram on either endpoint; `other` is what that endpoint's OTHER-ADDRESS names. */
  private onStun(msg: Buffer, address: string, port: number, other: StunEndpoints['fromMain'], sock: dgram.Socket): void {
    const source = stunAddressOf(address, port);
    const otherOfFamily: StunAddress | undefined = other[source.family];
    const r = answerBindingRequest(msg, source, otherOfFamily);
    if (r.kind === 'drop') { this.counters.stunDrops++; return; }
    // per-source response budget, charged only for requests we would answer
    if (!take(this.sources.get(sourceKey(address)).stun, this.sources.rates.stun, performance.now())) {
      this.drop('stun_rate_limited');
      return;
    }
    this.counters.stunRequests++;
    try { sock.send(r.data, port, address); } catch { /* socket closing */ }
  }

  private udpSend(frame: Uint8Array, port: number, address: string): void {
    try { this.udpSock?.send(frame, port, address); } catch { /* socket closing */ }
  }

  /** Tell a source with no registration so (relay-wide budget: the trigger is spoofable). */
  private notRegistered(reply: Reply): void {
    if (take(this.notRegBucket, NOT_REGISTERED_RATE, performance.now())) reply(encodeNotRegistered());
  }

  // ---------------- shared control path ----------------

  private onControl(buf: Buffer, agent: Agent | undefined, from: Origin): void {
    const d = decodeFrame(buf, this.o.maxPayload);
    if (!d.ok) { this.drop(d.drop); return; }
    const f = d.frame;
    const now = performance.now();
    switch (f.type) {
      case FRAME_HELLO:
        from.reply(encodeChallenge(this.cookies.issue(from.place, now), f.nonce));
        return;
      case FRAME_REGISTER:
        this.onRegister(f.cookie, f.ikMessage1, from, now);
        return;
      case FRAME_PING:
        if (!agent) {
          // the agent believes it is registered (we restarted or expired it): say so,
          // so it re-registers without waiting for its silence timeout
          this.drop('unregistered');
          this.notRegistered(from.reply);
          return;
        }
        // only the registered agent knows its token: a spoofed PING neither keeps the
        // registration alive nor gets an answer
        if (!tokenMatches(buf, 1 + f.token.length, agent.token)) { this.drop('bad_token'); return; }
        this.seen(agent, now);
        from.reply(encodePong(f.token));
        return;
      case FRAME_ACCEPT_FROM:
        this.onAcceptFrom(f, agent, from);
        return;
      case FRAME_LEAVE:
        this.onLeave(f, agent);
        return;
      default:
        this.drop('unexpected_frame');
    }
  }

  /**
   * The agent's control keys if `agent` itself sent this authenticated frame (counter newer
   * than any before, tag right under its k_ar): only then may the frame change anything; a
   * failure is counted `bad_auth`. An agent registered at another worker of a cluster has
   * its control keys there: the frame goes to that worker ('ctl'), which verifies it and
   * acts; nothing happens here.
   */
  private verified(f: Extract<RelayFrame, { counter: number }>, agent: Agent): Agent['ctl'] {
    if (!agent.ctl) {
      this.cluster?.send({ t: 'ctl', to: agent.owner!, key: agent.key.text, frame: new Uint8Array(f.signed.buffer, f.signed.byteOffset, f.signed.length + f.tag.length) });
      return undefined;
    }
    if (!agent.ctl.open(f)) { this.drop('bad_auth'); return undefined; }
    agent.lastSeen = performance.now();
    return agent.ctl;
  }

  private onAcceptFrom(f: Extract<RelayFrame, { type: typeof FRAME_ACCEPT_FROM }>, agent: Agent | undefined, from: Origin): void {
    if (!agent) { this.drop('unregistered'); this.notRegistered(from.reply); return; }
    const ctl = this.verified(f, agent);
    if (!ctl) return;
    const keys = f.keys.map((k) => PeerKey.fromBytes(k));
    agent.accept = keys.length === 0 ? undefined : new Set(keys.map((k) => k.id));
    const keyTexts = keys.length === 0 ? null : keys.map((k) => k.text);
    if (!this.cluster || this.cluster.workers < 2) { this.sendControl(agent, ctl.seal(FRAME_ACCEPT_ACK, acceptAckBody(f.counter))); return; }
    // ACCEPT_ACK once every other worker holds the set: after it, no worker forwards what
    // the set refuses (any worker may read the agent's peers' datagrams)
    const seq = this.nextAcceptSeq++;
    const older = this.acceptAckOf.get(agent.key.id);
    if (older !== undefined) this.acceptAcks.delete(older);
    this.acceptAckOf.set(agent.key.id, seq);
    this.acceptAcks.set(seq, { agent, counter: f.counter, confirmed: 0, expected: -1, at: performance.now() });
    this.cluster.send({ t: 'accept', from: this.cluster.workerId, key: agent.key.text, keys: keyTexts, seq });
  }

  /**
   * LEAVE: the agent is stopping. Its registration goes now, by the removal expiry does (the
   * table's callback destroys the control keys and, in a cluster, tells every worker), so a
   * peer's SEND to it gets PEER_GONE at once instead of vanishing until expiry. No answer:
   * the agent does not wait. A WebSocket stays open unregistered: the agent closes it next.
   */
  private onLeave(f: Extract<RelayFrame, { type: typeof FRAME_LEAVE }>, agent: Agent | undefined): void {
    // no NOT_REGISTERED answer: it would only ask a leaving sender to register again
    if (!agent) { this.drop('unregistered'); return; }
    if (!this.verified(f, agent)) return;
    this.agents.remove(agent, false);
    this.counters.leaves++;
    this.log?.info(whereIs(agent), 'agent left');
  }

  /** The accept set `seq` of `agent` waits no longer (answered, or its confirmation was lost). */
  private forgetAcceptAck(seq: number, agent: Agent): void {
    this.acceptAcks.delete(seq);
    if (this.acceptAckOf.get(agent.key.id) === seq) this.acceptAckOf.delete(agent.key.id);
  }

  /** An accept set's confirmation arrived ('accepted' from a worker, or how many the primary asked): ACK once all are in. */
  private acceptConfirmed(seq: number, confirmed: number, expected?: number): void {
    const p = this.acceptAcks.get(seq);
    if (!p) return;
    p.confirmed += confirmed;
    if (expected !== undefined) p.expected = expected;
    if (p.expected < 0 || p.confirmed < p.expected) return;
    this.forgetAcceptAck(seq, p.agent);
    // still this registration (not evicted or re-registered meanwhile)
    if (p.agent.ctl && this.agents.byKey.get(p.agent.key.id) === p.agent) this.sendControl(p.agent, p.agent.ctl.seal(FRAME_ACCEPT_ACK, acceptAckBody(p.counter)));
  }

  private onRegister(cookie: Uint8Array, msg1: Uint8Array, from: Origin, now: number): void {
    // cheap checks first: a forged, stale or already used cookie costs no DH; a valid one
    // is spent here, whatever follows
    const c = this.cookies.redeem(cookie, from.place, now);
    if (c !== 'ok') { this.regFail(c); return; }
    // the cookie proved the source receives at its address: charge its budget, then the
    // relay's, before any DH
    const src = this.sources.get(sourceKey(from.address), now);
    if (!take(src.handshake, this.sources.rates.handshake, now) || !take(this.hsGlobalBucket, this.rates.hsGlobal, now)) {
      this.regFail('rate_limited');
      return;
    }
    const hs = new HandshakeState({
      protocolName: NOISE_PROTOCOL, initiator: false, prologue: registrationPrologue(cookie), staticKey: this.o.keyPair,
    });
    try {
      this.completeRegistration(hs, msg1, from, src, now);
    } finally {
      hs.destroy(); // zero the ephemeral and chaining keys whatever happened
    }
  }

  private completeRegistration(hs: HandshakeState, msg1: Uint8Array, from: Origin, src: Agent['source'], now: number): void {
    try { hs.readMessage(msg1); } catch { this.regFail('bad_handshake'); return; }
    const raw = hs.remoteStaticKey();
    if (!raw || raw.length !== KEY_SIZE) { this.regFail('bad_handshake'); return; }
    const key = PeerKey.fromBytes(raw);
    let reject = 0;
    if (this.allow && !this.allow.has(key.text)) { this.regFail('not_allowed'); reject = REJECT_NOT_ALLOWED; }
    else if (!this.agents.byKey.has(key.id) && this.agents.size >= this.o.maxAgents) { this.regFail('full'); reject = REJECT_FULL; }
    // a key registered already (here or at another worker) keeps its token: its frames in
    // flight while it registers again (a parallel registration, a lost REGISTERED, another
    // worker) still match; only the holder of the key's private key gets it
    const known = this.agents.byKey.get(key.id);
    const token = reject ? new Uint8Array(REG_TOKEN_SIZE) : known ? tokenBytes(known.token) : crypto.getRandomValues(new Uint8Array(REG_TOKEN_SIZE));
    const words = tokenWords(token);
    const msg2 = hs.writeMessage(encodeRegisteredPayload({
      status: reject ? STATUS_REJECTED : STATUS_REGISTERED, reason: reject, keepaliveS: this.o.keepaliveS, expiryS: this.o.expiryS, token,
    }));
    token.fill(0);
    if (reject) { from.reply(encodeRegistered(msg2)); return; }
    const agent: Agent = {
      key, transport: from.transport, address: from.address, port: from.port, place: from.place, conn: from.conn,
      lastSeen: now, send: newBucket(this.rates.agent, now), receive: newBucket(this.rates.dest, now),
      gone: newBucket(PEER_GONE_RATE, now), source: src, ctl: controlKeysOf(hs), token: words, owner: undefined, accept: undefined, moves: [],
    };
    const conflict = this.agents.install(agent, now, (old, inConflict) => { if (inConflict) this.keyConflict(old, agent, now); });
    this.cluster?.send({ t: 'add', from: this.cluster.workerId, key: key.text, transport: agent.transport, address: agent.address, port: agent.port, place: agent.place, token: agent.token });
    this.counters.registrations++;
    from.reply(encodeRegistered(msg2));
    if (conflict) this.sendControl(agent, agent.ctl!.seal(FRAME_KEY_CONFLICT));
    this.log?.info(whereIs(agent), 'agent registered');
  }

  /** One key, two places evicting each other: tell both agents (authenticated) and the operator. */
  private keyConflict(old: Agent, now: Agent, t: number): void {
    // an old registration at another worker is told by that worker when it hears of this one
    if (old.ctl) this.sendControl(old, old.ctl.seal(FRAME_KEY_CONFLICT));
    const last = this.conflictLogged.get(now.key.id);
    if (last === undefined || t - last >= CONFLICT_LOG_MS) {
      this.conflictLogged.set(now.key.id, t);
      this.counters.keyConflicts++;
      this.log?.warn({ key: now.key.text, places: [`${old.transport} ${old.address}:${old.port}`, `${now.transport} ${now.address}:${now.port}`], moves: now.moves.length },
        'one key is registered from two places that keep evicting each other (the same key file in two agents?)');
    }
  }

  // ---------------- forwarding (hot path) ----------------

  private forward(src: Agent, frame: Buffer): void {
    const bad = dataFrameProblem(frame, this.o.maxPayload);
    if (bad !== undefined) { this.drop(bad); return; }
    // before anything is charged or refreshed: a spoofer of the agent's address does not
    // know its registration token
    if (!tokenMatches(frame, 1, src.token)) { this.drop('bad_token'); return; }
    const now = performance.now();
    this.seen(src, now);
    // every budget counts 1441-byte packets: a 64 KiB frame costs 46 of them (limits.ts)
    const cost = frameCost(frame.length);
    if (!take(src.send, this.rates.agent, now, cost)) { this.drop('rate_limited'); return; }
    if (!take(src.source.forward, this.rates.source, now, cost)) { this.drop('source_rate_limited'); return; }
    const dst = this.agents.keyAt(frame, 1 + REG_TOKEN_SIZE);
    if (dst === undefined) {
      this.drop('no_peer');
      if (take(src.gone, PEER_GONE_RATE, now)) {
        const missing = frame.subarray(1 + REG_TOKEN_SIZE, SEND_HEADER_SIZE);
        if (src.ctl) this.sendControl(src, src.ctl.seal(FRAME_PEER_GONE, missing));
        else this.cluster?.send({ t: 'gone', to: src.owner!, key: src.key.text, missing: new Uint8Array(missing) });
      }
      return;
    }
    if (dst.accept !== undefined && !dst.accept.has(src.key.id)) { this.drop('not_accepted'); return; }
    if (!take(dst.receive, this.rates.dest, now, cost)) { this.drop('dest_rate_limited'); return; }
    if (!take(this.globalBucket, this.rates.global, now, cost)) { this.drop('global_rate_limited'); return; }
    // RECV in place: type and source key over the end of the SEND's header, no copy
    frame[RECV_OFFSET_IN_SEND] = FRAME_RECV;
    frame.set(src.key.bytes, RECV_OFFSET_IN_SEND + 1);
    const recvLength = frame.length - RECV_OFFSET_IN_SEND;
    this.counters.forwardedPackets++;
    this.counters.forwardedBytes += recvLength;
    // UDP by offset and length: no view object per packet on the hot path
    if (dst.transport === 'udp') this.udpSock!.send(frame, RECV_OFFSET_IN_SEND, recvLength, dst.port, dst.address);
    else if (dst.conn) this.wsSendData(dst.conn as WsConn, frame.subarray(RECV_OFFSET_IN_SEND));
    else this.cluster?.send({ t: 'fwd', to: dst.owner!, key: dst.key.text, frame: new Uint8Array(frame.subarray(RECV_OFFSET_IN_SEND)) });
  }

  /** An agent sent something: refresh it (its owner worker refreshes agents of others). */
  private seen(a: Agent, now: number): void {
    a.lastSeen = now;
    if (a.owner === undefined) return;
    let s = this.seenRemote.get(a.owner);
    if (!s) { s = new Set(); this.seenRemote.set(a.owner, s); }
    s.add(a.key.text);
  }

  // ---------------- cluster ----------------

  private onClusterMessage(m: ClusterMessage): void {
    const now = performance.now();
    const me = this.cluster!.workerId;
    const local = (text: string): Agent | undefined => {
      const a = this.agents.byKey.get(PeerKey.fromText(text).id);
      return a && a.owner === undefined ? a : undefined;
    };
    switch (m.t) {
      case 'add': {
        if (m.from === me) return;
        const agent: Agent = {
          key: PeerKey.fromText(m.key), transport: m.transport, address: m.address, port: m.port, place: m.place,
          conn: undefined, lastSeen: now, send: newBucket(this.rates.agent, now), receive: newBucket(this.rates.dest, now),
          gone: newBucket(PEER_GONE_RATE, now), source: this.sources.get(sourceKey(m.address), now), ctl: undefined,
          token: m.token, owner: m.from, accept: undefined, moves: [],
        };
        this.agents.install(agent, now, (old, conflict) => { if (conflict && old.ctl) this.sendControl(old, old.ctl.seal(FRAME_KEY_CONFLICT)); });
        return;
      }
      case 'del': {
        const a = this.agents.byKey.get(PeerKey.fromText(m.key).id);
        if (a && a.owner === m.from && a.place === m.place) this.agents.remove(a, false);
        return;
      }
      case 'accept': {
        const a = this.agents.byKey.get(PeerKey.fromText(m.key).id);
        if (a && a.owner === m.from) a.accept = m.keys ? new Set(m.keys.map((k) => PeerKey.fromText(k).id)) : undefined;
        // confirmed whether or not the agent is known here: this worker forwards nothing the set refuses
        if (m.seq !== undefined) this.cluster!.send({ t: 'accepted', to: m.from, seq: m.seq });
        return;
      }
      case 'acceptSent':
        this.acceptConfirmed(m.seq, 0, m.n);
        return;
      case 'accepted':
        this.acceptConfirmed(m.seq, 1);
        return;
      case 'seen':
        for (const k of m.keys) { const a = local(k); if (a) a.lastSeen = now; }
        return;
      case 'fwd': {
        const a = local(m.key);
        if (a?.conn) this.wsSendData(a.conn as WsConn, Buffer.from(m.frame)); else this.drop('no_peer');
        return;
      }
      case 'gone': {
        const a = local(m.key);
        if (a?.ctl) this.sendControl(a, a.ctl.seal(FRAME_PEER_GONE, m.missing));
        return;
      }
      case 'ctl': {
        const a = local(m.key);
        if (!a) return;
        this.onControl(Buffer.from(m.frame), a, {
          place: a.place, transport: a.transport, address: a.address, port: a.port, conn: a.conn as WsConn | undefined,
          reply: (f) => this.sendControl(a, f),
        });
        return;
      }
      case 'totals':
        Object.assign(this.shown, { ...m.c, drops: Object.assign(this.shown.drops, m.c.drops), regFailures: Object.assign(this.shown.regFailures, m.c.regFailures), httpRefused: Object.assign(this.shown.httpRefused, m.c.httpRefused) });
        return;
      case 'counters':
        return; // for the primary
    }
  }

  private sendControl(a: Agent, f: Uint8Array): void {
    if (a.transport === 'udp') { this.udpSend(f, a.port, a.address); return; }
    const c = a.conn as WsConn;
    if (c.ws.readyState !== WebSocket.OPEN) return;
    if (c.ws.bufferedAmount <= this.o.wsHighWater) { c.ws.send(f, { binary: true }); return; }
    if (c.control.length >= CONTROL_QUEUE) { c.control.shift(); this.drop('queue_overflow'); }
    c.control.push(f);
    this.markBacklogged(c);
  }

  private wsSendData(c: WsConn, frame: Buffer): void {
    if (c.ws.readyState !== WebSocket.OPEN) { this.drop('no_peer'); return; }
    if (c.queue.length === 0 && c.control.length === 0 && c.ws.bufferedAmount <= this.o.wsHighWater) {
      c.ws.send(frame, { binary: true });
      return;
    }
    // the queue holds wsQueueFrames 1441-byte packets' worth, however large the frames: a
    // slow destination holds as much relay memory as before 64 KiB frames (~370 KB)
    const cost = frameCost(frame.length);
    while (c.queue.length > 0 && c.queuedCost + cost > this.o.wsQueueFrames) {
      c.queuedCost -= frameCost(c.queue.shift()!.length);
      this.drop('queue_overflow');
    }
    c.queue.push(frame);
    c.queuedCost += cost;
    this.markBacklogged(c);
  }

  private markBacklogged(c: WsConn): void {
    this.backlogged.add(c);
    if (!this.drainTimer) {
      this.drainTimer = setInterval(() => this.drain(), 5);
      this.drainTimer.unref();
    }
  }

  private drain(): void {
    for (const c of this.backlogged) {
      if (c.ws.readyState !== WebSocket.OPEN) { c.queue.length = 0; c.queuedCost = 0; c.control.length = 0; this.backlogged.delete(c); continue; }
      while (c.control.length > 0 && c.ws.bufferedAmount <= this.o.wsHighWater) c.ws.send(c.control.shift()!, { binary: true });
      while (c.control.length === 0 && c.queue.length > 0 && c.ws.bufferedAmount <= this.o.wsHighWater) {
        const f = c.queue.shift()!;
        c.queuedCost -= frameCost(f.length);
        c.ws.send(f, { binary: true });
      }
      if (c.queue.length === 0 && c.control.length === 0) this.backlogged.delete(c);
    }
    if (this.backlogged.size === 0 && this.drainTimer) { clearInterval(this.drainTimer); this.drainTimer = undefined; }
  }

  // ---------------- WebSocket ----------------

  private onWsConnection(ws: WebSocket, remote: string): void {
    const c: WsConn = {
      ws, id: this.nextConnId++, remote, agent: undefined, queue: [], queuedCost: 0, control: [], openedAt: performance.now(),
      close: (code, why) => ws.close(code, why),
    };
    this.wsConns.add(c);
    const origin: Origin = {
      place: `w${c.id}`, transport: 'ws', address: remote, port: 0, conn: c,
      reply: (f) => { if (ws.readyState === WebSocket.OPEN) ws.send(f, { binary: true }); },
    };
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      try {
        if (!isBinary) { this.drop('not_binary'); return; }
        if (data.length > 0 && data[0] === FRAME_SEND) {
          if (!c.agent) { this.drop('unregistered'); this.notRegistered(origin.reply); return; }
          this.forward(c.agent, data);
          return;
        }
        if (isRelayFrame(data)) { this.onControl(data, c.agent, origin); return; }
        this.drop('unknown_type');
      } catch (err) {
        this.handlerError(err, 'WebSocket');
      }
    });
    ws.on('error', () => { /* 'close' follows; oversized messages land here */ this.drop('oversized'); });
    ws.on('close', () => {
      this.wsConns.delete(c);
      this.backlogged.delete(c);
      if (c.agent) this.agents.remove(c.agent, false);
      c.queue.length = 0;
      c.queuedCost = 0;
    });
  }

  // ---------------- HTTP ----------------

  private onHttp(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0];
    if (this.lobby?.serves(path)) { this.lobby.handle(req, res); return; }
    if (req.method === 'GET' && path === '/metrics') {
      this.metrics.metrics().then((text) => {
        res.writeHead(200, { 'content-type': this.metrics.contentType });
        res.end(text);
      }, () => { res.writeHead(500); res.end(); });
      return;
    }
    if (req.method === 'GET' && path === '/healthz') {
      res.writeHead(this.stopping ? 503 : 200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ status: this.stopping ? 'stopping' : 'ok', agents: this.agents.size, key: this.publicKey }));
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found\n');
  }

  // ---------------- housekeeping ----------------

  private sweep(): void {
    const now = performance.now();
    const limit = now - this.o.expiryS * 1000;
    for (const a of this.agents.values()) {
      // agents registered at another worker expire there
      if (a.owner === undefined && a.lastSeen < limit) {
        this.agents.remove(a, true);
        this.log?.info(whereIs(a), 'registration expired');
      }
    }
    // WebSocket connections that never registered go quickly: they hold a descriptor
    for (const c of this.wsConns) if (!c.agent && now - c.openedAt > this.o.wsRegisterTimeoutMs) c.ws.terminate();
    for (const [k, t] of this.conflictLogged) if (now - t > CONFLICT_LOG_MS) this.conflictLogged.delete(k);
    // a confirmation lost with a worker that died: the agent retransmits its set every second
    for (const [seq, p] of this.acceptAcks) {
      if (now - p.at > ACCEPT_CONFIRM_MS) this.forgetAcceptAck(seq, p.agent);
    }
    this.cookies.prune(now);
    this.sources.sweep(now);
    if (this.cluster) {
      for (const [to, keys] of this.seenRemote) this.cluster.send({ t: 'seen', to, keys: [...keys] });
      this.seenRemote.clear();
      this.cluster.send({ t: 'counters', from: this.cluster.workerId, c: snapshot(this.counters) });
    }
  }

  private handlerError(err: unknown, where: string): void {
    this.counters.handlerErrors++;
    this.log?.error({ err: String(err), where }, 'relay frame handler threw (bug); frame dropped');
  }

  private drop(reason: DropReason): void { this.counters.drops[reason]++; }
  private regFail(reason: RegFailure): void { this.counters.regFailures[reason]++; }
}
