// mpyc-relay server: STUN + registration + forwarding over UDP and WebSocket,
// /metrics and /healthz over HTTP (docs/protocol/relay.md, docs/relay.md).
import * as dgram from 'node:dgram';
import * as http from 'node:http';
import { WebSocketServer, WebSocket } from 'ws';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { HandshakeState, type KeyPair } from './handshake.js';
import { answerBindingRequest, stunAddressOf } from '../stun/codec.js';
import {
  FRAME_HELLO, FRAME_PING, FRAME_PONG, FRAME_REGISTER, FRAME_SEND, FRAME_RECV, FRAME_RESTARTING,
  FRAME_NOT_REGISTERED, COOKIE_SIZE, HELLO_SIZE, IK_MSG1_SIZE, KEY_SIZE, NOISE_PROTOCOL,
  PING_SIZE, REGISTER_SIZE, REJECT_FULL, REJECT_NOT_ALLOWED, SEND_HEADER_SIZE, DEFAULT_MAX_PAYLOAD,
  encodeChallenge, encodePeerGone, encodePingLike, encodeRegistered, encodeRegisteredPayload,
  encodeRejected, encodeSimple, registrationPrologue,
} from './wire.js';
import { CookieJar } from './cookie.js';
import { RelayCounters, createRelayMetrics, type DropReason, type RegFailure } from './metrics.js';
import { keyToBase64 } from './keycache.js';
import { createLobbyService, type LobbyOption, type LobbyService } from '../lobby/http.js';

export interface HostPort { host: string; port: number }

export interface RelayServerOptions {
  keyPair: KeyPair;
  udp: HostPort;
  /** omit to run without HTTP/WebSocket */
  http?: HostPort;
  /** base64 keys allowed to register; undefined = open relay */
  allow?: Set<string>;
  /** per-agent forwarding rate, packets/s (default 100000) and burst (default rate/2) */
  ratePps?: number;
  burst?: number;
  maxPayload?: number;
  maxAgents?: number;
  keepaliveS?: number;
  /** registrations expire after this long without a frame from the agent (default 35 s) */
  expiryS?: number;
  /** per-destination WebSocket queue (frames) and the bufferedAmount that starts queueing */
  wsQueueFrames?: number;
  wsHighWater?: number;
  logger?: Logger;
  /** lobbies on the HTTP port (docs/protocol/lobby.md): limits, or false for none (default: on) */
  lobby?: LobbyOption;
}

interface Agent {
  /** the 32 key bytes as a latin1 string: the map key, and written into RECV frames */
  keyBin: string;
  transport: 'udp' | 'ws';
  address: string;
  port: number;
  conn: WsConn | undefined;
  lastSeen: number;
  tokens: number;
  refillAt: number;
  goneTokens: number;
  goneAt: number;
}

interface WsConn {
  ws: WebSocket;
  id: number;
  agent: Agent | undefined;
  queue: Buffer[];
  control: Uint8Array[];
  openedAt: number;
}

type Reply = (frame: Uint8Array) => void;

const CONTROL_QUEUE = 16;

const b64 = (keyBin: string): string => Buffer.from(keyBin, 'latin1').toString('base64');

export class RelayServer {
  readonly counters = new RelayCounters();
  readonly metrics: Registry;
  private readonly o: Required<Omit<RelayServerOptions, 'allow' | 'http' | 'logger' | 'lobby'>> & Pick<RelayServerOptions, 'http' | 'logger'>;
  private readonly lobby: LobbyService | undefined;
  private allow: Set<string> | undefined;
  private readonly cookies = new CookieJar();
  private readonly byKey = new Map<string, Agent>();
  /** UDP bindings: address -> port -> agent (no string building per packet; few
   *  distinct addresses behind NATs, so few inner maps) */
  private readonly byUdp = new Map<string, Map<number, Agent>>();
  private readonly wsConns = new Set<WsConn>();
  private readonly backlogged = new Set<WsConn>();
  private udpCount = 0;
  private wsCount = 0;
  private nextConnId = 1;
  private udpSock: dgram.Socket | undefined;
  private httpServer: http.Server | undefined;
  private wss: WebSocketServer | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private drainTimer: NodeJS.Timeout | undefined;
  private notRegTokens = 100;
  private stopping = false;
  private readonly log: Logger | undefined;
  readonly publicKey: string;

  constructor(opts: RelayServerOptions) {
    const rate = opts.ratePps ?? 100_000;
    this.o = {
      keyPair: opts.keyPair, udp: opts.udp, http: opts.http, logger: opts.logger,
      ratePps: rate, burst: opts.burst ?? Math.max(1, Math.floor(rate / 2)),
      maxPayload: opts.maxPayload ?? DEFAULT_MAX_PAYLOAD, maxAgents: opts.maxAgents ?? 100_000,
      keepaliveS: opts.keepaliveS ?? 10, expiryS: opts.expiryS ?? 35,
      wsQueueFrames: opts.wsQueueFrames ?? 256, wsHighWater: opts.wsHighWater ?? 256 * 1024,
    };
    this.allow = opts.allow;
    this.log = opts.logger;
    this.publicKey = keyToBase64(opts.keyPair.publicKey);
    this.metrics = createRelayMetrics(this.counters, {
      agents: () => ({ udp: this.udpCount, ws: this.wsCount }),
      queueDepth: () => { let n = 0; for (const c of this.wsConns) n += c.queue.length; return n; },
    });
    this.lobby = createLobbyService(opts.lobby, opts.http !== undefined, this.metrics);
  }

  /** Bind sockets. Resolves with the actual ports (port 0 = ephemeral). */
  async start(): Promise<{ udpPort: number; httpPort: number | undefined }> {
    const udp = dgram.createSocket({ type: this.o.udp.host.includes(':') ? 'udp6' : 'udp4', recvBufferSize: 8 << 20, sendBufferSize: 8 << 20 });
    this.udpSock = udp;
    udp.on('message', (msg, rinfo) => this.onUdp(msg, rinfo.address, rinfo.port));
    udp.on('error', (err) => this.log?.error({ err: err.message }, 'UDP socket error'));
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(this.o.udp.port, this.o.udp.host, () => { udp.off('error', reject); resolve(); });
    });
    let httpPort: number | undefined;
    if (this.o.http) {
      const server = http.createServer((req, res) => this.onHttp(req, res));
      this.httpServer = server;
      const wss = new WebSocketServer({ noServer: true, maxPayload: SEND_HEADER_SIZE + this.o.maxPayload, perMessageDeflate: false });
      this.wss = wss;
      server.on('upgrade', (req, socket, head) => {
        if ((req.url ?? '').split('?')[0] !== '/relay' || this.stopping) { socket.destroy(); return; }
        if (this.wsConns.size >= this.o.maxAgents) { this.counters.regFailures.full++; socket.destroy(); return; }
        wss.handleUpgrade(req, socket, head, (ws) => this.onWsConnection(ws));
      });
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.o.http!.port, this.o.http!.host, () => { server.off('error', reject); resolve(); });
      });
      const a = server.address();
      httpPort = typeof a === 'object' && a ? a.port : undefined;
    }
    this.sweepTimer = setInterval(() => this.sweep(), 1000);
    this.sweepTimer.unref();
    return { udpPort: udp.address().port, httpPort };
  }

  /** Replace the allow-list (SIGHUP reload); evicts registered agents no longer allowed. */
  setAllowList(allow: Set<string> | undefined): void {
    this.allow = allow;
    if (!allow) return;
    for (const a of [...this.byKey.values()]) if (!allow.has(b64(a.keyBin))) this.removeAgent(a, true);
  }

  get agentCount(): number { return this.byKey.size; }

  /** Is this key registered, and over which transport? (tests, status) */
  lookup(keyB64: string): { transport: 'udp' | 'ws'; address: string; port: number } | undefined {
    const a = this.byKey.get(Buffer.from(keyB64, 'base64').toString('latin1'));
    return a && { transport: a.transport, address: a.address, port: a.port };
  }

  /**
   * Graceful stop: tell every agent RESTARTING, then close sockets. `notify=false`
   * for an abrupt stop (tests of client recovery).
   */
  async stop(notify = true): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (notify) {
      const f = encodeSimple(FRAME_RESTARTING);
      for (const a of this.byKey.values()) this.sendControl(a, f);
      await new Promise((r) => setTimeout(r, 50));
    }
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    if (this.drainTimer) clearInterval(this.drainTimer);
    this.lobby?.close();
    for (const c of this.wsConns) c.ws.terminate();
    this.wsConns.clear();
    this.wss?.close();
    await new Promise<void>((r) => (this.httpServer ? this.httpServer.close(() => r()) : r()));
    this.httpServer?.closeAllConnections();
    await new Promise<void>((r) => { try { this.udpSock?.close(() => r()); } catch { r(); } });
  }

  // ---------------- UDP ----------------

  private onUdp(msg: Buffer, address: string, port: number): void {
    try {
      const t = msg.length > 0 ? msg[0]! : 0xff;
      if (t === FRAME_SEND) {
        const src = this.byUdp.get(address)?.get(port);
        if (src === undefined) { this.drop('unregistered'); this.notRegistered(msg, address, port); return; }
        this.forward(src, msg);
        return;
      }
      if (t <= 0x03) { this.onStun(msg, address, port); return; }
      if (t >= 0x20 && t <= 0x3f) {
        this.onControl(msg, `u${address}|${port}`, this.byUdp.get(address)?.get(port), (f) => this.udpSend(f, port, address),
          (hs) => ({ transport: 'udp', address, port, conn: undefined, hs }));
        return;
      }
      this.drop('unknown_type');
    } catch (err) {
      this.drop('malformed');
      this.log?.debug({ err: String(err) }, 'UDP receive error');
    }
  }

  private onStun(msg: Buffer, address: string, port: number): void {
    const r = answerBindingRequest(msg, stunAddressOf(address, port));
    if (r.kind === 'drop') { this.counters.stunDrops++; return; }
    this.counters.stunRequests++;
    this.udpSend(r.data, port, address);
  }

  private udpSend(frame: Uint8Array, port: number, address: string): void {
    try { this.udpSock?.send(frame, port, address); } catch { /* socket closing */ }
  }

  private notRegistered(msg: Buffer, address: string, port: number): void {
    // tell an agent that lost its registration (relay restart) so it re-registers at
    // once; globally rate-limited so it cannot be used to reflect traffic
    if (this.notRegTokens <= 0 || msg.length < SEND_HEADER_SIZE) return;
    this.notRegTokens--;
    this.udpSend(encodeSimple(FRAME_NOT_REGISTERED), port, address);
  }

  // ---------------- shared control path ----------------

  private onControl(
    buf: Buffer, source: string, agent: Agent | undefined, reply: Reply,
    bind: (hs: HandshakeState) => Pick<Agent, 'transport' | 'address' | 'port' | 'conn'> & { hs: HandshakeState },
  ): void {
    const now = performance.now();
    switch (buf[0]) {
      case FRAME_HELLO:
        if (buf.length !== HELLO_SIZE) { this.drop('malformed'); return; }
        reply(encodeChallenge(this.cookies.issue(source, now)));
        return;
      case FRAME_REGISTER:
        this.onRegister(buf, source, reply, bind, now);
        return;
      case FRAME_PING:
        if (buf.length !== PING_SIZE) { this.drop('malformed'); return; }
        if (!agent) {
          // the agent believes it is registered (we restarted or expired it): say so,
          // rate-limited, so it re-registers without waiting for its silence timeout
          this.drop('unregistered');
          if (this.notRegTokens > 0) { this.notRegTokens--; reply(encodeSimple(FRAME_NOT_REGISTERED)); }
          return;
        }
        agent.lastSeen = now;
        reply(encodePingLike(FRAME_PONG, buf.subarray(1)));
        return;
      case FRAME_PONG:
        if (agent) agent.lastSeen = now;
        return;
      default:
        this.drop('unexpected_frame');
    }
  }

  private onRegister(
    buf: Buffer, source: string, reply: Reply,
    bind: (hs: HandshakeState) => Pick<Agent, 'transport' | 'address' | 'port' | 'conn'> & { hs: HandshakeState }, now: number,
  ): void {
    if (buf.length !== REGISTER_SIZE) { this.regFail('malformed'); return; }
    const cookie = buf.subarray(4, 4 + COOKIE_SIZE);
    // cheap checks first: a forged, stale or replayed cookie costs no DH
    const c = this.cookies.check(cookie, source, now);
    if (c !== 'ok') { this.regFail(c); return; }
    const hs = new HandshakeState({
      protocolName: NOISE_PROTOCOL, initiator: false, prologue: registrationPrologue(cookie), staticKey: this.o.keyPair,
    });
    try {
      hs.readMessage(buf.subarray(4 + COOKIE_SIZE, 4 + COOKIE_SIZE + IK_MSG1_SIZE));
    } catch {
      this.regFail('bad_handshake');
      return;
    }
    this.cookies.spend(cookie, now);
    const key = hs.remoteStaticKey();
    if (!key || key.length !== KEY_SIZE) { this.regFail('bad_handshake'); return; }
    const keyB64 = keyToBase64(key);
    if (this.allow && !this.allow.has(keyB64)) {
      this.regFail('not_allowed');
      reply(encodeRejected(REJECT_NOT_ALLOWED));
      return;
    }
    const keyBin = Buffer.from(key).toString('latin1');
    if (!this.byKey.has(keyBin) && this.byKey.size >= this.o.maxAgents) {
      this.regFail('full');
      reply(encodeRejected(REJECT_FULL));
      return;
    }
    let msg2: Uint8Array;
    try {
      msg2 = hs.writeMessage(encodeRegisteredPayload(this.o.keepaliveS, this.o.expiryS));
    } catch {
      this.regFail('bad_handshake');
      return;
    }
    const b = bind(hs);
    const agent: Agent = {
      keyBin, transport: b.transport, address: b.address, port: b.port,
      conn: b.conn, lastSeen: now, tokens: this.o.burst, refillAt: now, goneTokens: 10, goneAt: now,
    };
    this.installAgent(agent);
    this.counters.registrations++;
    reply(encodeRegistered(msg2));
  }

  /** Newest registration for a key wins; an address/connection holds one key. */
  private installAgent(agent: Agent): void {
    const old = this.byKey.get(agent.keyBin);
    if (old) this.removeAgent(old, old.conn !== undefined && old.conn !== agent.conn);
    if (agent.transport === 'udp') {
      // an address holds one key: evict whoever was registered from it before (this may
      // delete the per-port map, so look it up again afterwards)
      const prev = this.byUdp.get(agent.address)?.get(agent.port);
      if (prev) this.removeAgent(prev, false);
      let m = this.byUdp.get(agent.address);
      if (!m) { m = new Map(); this.byUdp.set(agent.address, m); }
      m.set(agent.port, agent);
      this.udpCount++;
    } else {
      const c = agent.conn!;
      if (c.agent && c.agent !== agent) this.removeAgent(c.agent, false);
      c.agent = agent;
      this.wsCount++;
    }
    this.byKey.set(agent.keyBin, agent);
    this.log?.debug({ key: b64(agent.keyBin), transport: agent.transport, address: agent.address, port: agent.port }, 'agent registered');
  }

  private removeAgent(a: Agent, closeConn: boolean): void {
    if (this.byKey.get(a.keyBin) === a) this.byKey.delete(a.keyBin);
    if (a.transport === 'udp') {
      const m = this.byUdp.get(a.address);
      if (m && m.get(a.port) === a) {
        m.delete(a.port);
        if (m.size === 0) this.byUdp.delete(a.address);
        this.udpCount--;
      }
    } else if (a.conn && a.conn.agent === a) {
      a.conn.agent = undefined;
      this.wsCount--;
      if (closeConn) a.conn.ws.close(4000, 'registered elsewhere');
    }
  }

  // ---------------- forwarding (hot path) ----------------

  private forward(src: Agent, frame: Buffer): void {
    const now = performance.now();
    src.lastSeen = now;
    if (frame.length < SEND_HEADER_SIZE) { this.drop('malformed'); return; }
    if (frame.length - SEND_HEADER_SIZE > this.o.maxPayload) { this.drop('oversized'); return; }
    if (src.tokens < 1) {
      const add = ((now - src.refillAt) * this.o.ratePps) / 1000;
      src.tokens = Math.min(this.o.burst, src.tokens + add);
      src.refillAt = now;
      if (src.tokens < 1) { this.drop('rate_limited'); return; }
    }
    src.tokens--;
    const dst = this.byKey.get(frame.toString('latin1', 1, SEND_HEADER_SIZE));
    if (dst === undefined) {
      this.drop('no_peer');
      this.peerGone(src, frame, now);
      return;
    }
    frame[0] = FRAME_RECV;
    frame.write(src.keyBin, 1, KEY_SIZE, 'latin1');
    this.counters.forwardedPackets++;
    this.counters.forwardedBytes += frame.length;
    if (dst.transport === 'udp') {
      this.udpSock!.send(frame, dst.port, dst.address);
    } else {
      this.wsSendData(dst.conn!, frame);
    }
  }

  private peerGone(src: Agent, frame: Buffer, now: number): void {
    // at most ~10 notices per second per sender
    if (src.goneTokens < 1) {
      src.goneTokens = Math.min(10, src.goneTokens + (now - src.goneAt) / 100);
      src.goneAt = now;
      if (src.goneTokens < 1) return;
    }
    src.goneTokens--;
    this.sendControl(src, encodePeerGone(frame.subarray(1, SEND_HEADER_SIZE)));
  }

  private sendControl(a: Agent, f: Uint8Array): void {
    if (a.transport === 'udp') { this.udpSend(f, a.port, a.address); return; }
    const c = a.conn!;
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
    if (c.queue.length >= this.o.wsQueueFrames) { c.queue.shift(); this.drop('queue_overflow'); }
    c.queue.push(frame);
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
      if (c.ws.readyState !== WebSocket.OPEN) { c.queue.length = 0; c.control.length = 0; this.backlogged.delete(c); continue; }
      while (c.control.length > 0 && c.ws.bufferedAmount <= this.o.wsHighWater) c.ws.send(c.control.shift()!, { binary: true });
      while (c.control.length === 0 && c.queue.length > 0 && c.ws.bufferedAmount <= this.o.wsHighWater) c.ws.send(c.queue.shift()!, { binary: true });
      if (c.queue.length === 0 && c.control.length === 0) this.backlogged.delete(c);
    }
    if (this.backlogged.size === 0 && this.drainTimer) { clearInterval(this.drainTimer); this.drainTimer = undefined; }
  }

  // ---------------- WebSocket ----------------

  private onWsConnection(ws: WebSocket): void {
    const c: WsConn = { ws, id: this.nextConnId++, agent: undefined, queue: [], control: [], openedAt: performance.now() };
    this.wsConns.add(c);
    const source = `w${c.id}`;
    const reply: Reply = (f) => { if (ws.readyState === WebSocket.OPEN) ws.send(f, { binary: true }); };
    const bind = (hs: HandshakeState): Pick<Agent, 'transport' | 'address' | 'port' | 'conn'> & { hs: HandshakeState } =>
      ({ transport: 'ws', address: `ws#${c.id}`, port: 0, conn: c, hs });
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      try {
        if (!isBinary) { this.drop('not_binary'); return; }
        const t = data.length > 0 ? data[0]! : 0xff;
        if (t === FRAME_SEND) {
          if (!c.agent) {
            this.drop('unregistered');
            if (this.notRegTokens > 0) { this.notRegTokens--; reply(encodeSimple(FRAME_NOT_REGISTERED)); }
            return;
          }
          this.forward(c.agent, data);
          return;
        }
        if (t >= 0x20 && t <= 0x3f) { this.onControl(data, source, c.agent, reply, bind); return; }
        this.drop('unknown_type');
      } catch (err) {
        this.drop('malformed');
        this.log?.debug({ err: String(err) }, 'WebSocket receive error');
      }
    });
    ws.on('error', () => { /* 'close' follows; oversized messages land here */ this.drop('oversized'); });
    ws.on('close', () => {
      this.wsConns.delete(c);
      this.backlogged.delete(c);
      if (c.agent) this.removeAgent(c.agent, false);
      c.queue.length = 0;
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
      res.end(JSON.stringify({ status: this.stopping ? 'stopping' : 'ok', agents: this.byKey.size, key: this.publicKey }));
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found\n');
  }

  // ---------------- housekeeping ----------------

  private sweep(): void {
    const now = performance.now();
    const limit = now - this.o.expiryS * 1000;
    for (const a of [...this.byKey.values()]) if (a.lastSeen < limit) this.removeAgent(a, true);
    // WebSocket connections that never registered (half-open state) go after 10 s
    for (const c of this.wsConns) if (!c.agent && now - c.openedAt > 10_000) c.ws.terminate();
    this.cookies.prune(now);
    this.notRegTokens = 100;
  }

  private drop(reason: DropReason): void { this.counters.drops[reason]++; }
  private regFail(reason: RegFailure): void { this.counters.regFailures[reason]++; }
}
