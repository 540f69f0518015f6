// The relay's HTTP(S) port: WebSocket upgrades on /relay, /metrics and /healthz, with
// connection caps (total and per source address) and header/idle timeouts, so idle or
// dribbling connections cannot hold the relay at its file-descriptor limit
// (docs/relay.md, "Limits").
import * as http from 'node:http';
import * as https from 'node:https';
import type { Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import type { HttpRefusal } from './metrics.js';
import { sourceKey, type SourceTable } from './limits.js';

export interface HttpLimits {
  /** open TCP connections at once (HTTP, TLS handshakes, WebSockets) */
  maxConnections: number;
  /** open TCP connections from one source address (IPv6: one /64) */
  maxConnectionsPerSource: number;
  /** a request's headers (and a TLS handshake) must be complete within this */
  headersTimeoutMs: number;
  /** an HTTP connection with no request in flight is closed after this */
  idleTimeoutMs: number;
}

export interface HttpFrontOptions extends HttpLimits {
  host: string;
  port: number;
  /** PEM certificate chain and private key: serve https and wss instead of http and ws */
  tls?: { cert: string | Buffer; key: string | Buffer };
  maxMessageBytes: number;
  sources: SourceTable;
  refused: (cap: HttpRefusal) => void;
  accepting: () => boolean;
  onWebSocket: (ws: WebSocket, remoteAddress: string) => void;
  onRequest: (req: http.IncomingMessage, res: http.ServerResponse) => void;
}

export class HttpFront {
  private server: http.Server | https.Server | undefined;
  private wss: WebSocketServer | undefined;
  private open = 0;
  /** raw socket -> the timer that closes it if its first request's headers never complete */
  private readonly deadlines = new WeakMap<Socket, NodeJS.Timeout>();

  constructor(private readonly o: HttpFrontOptions) {}

  get connections(): number { return this.open; }

  async start(): Promise<number> {
    const o = this.o;
    const common = {
      headersTimeout: o.headersTimeoutMs, requestTimeout: Math.max(o.headersTimeoutMs, 2 * o.headersTimeoutMs),
      keepAliveTimeout: o.idleTimeoutMs,
      // how often Node checks the two timeouts above (default 30 s: too coarse for a cap)
      connectionsCheckingInterval: Math.min(1000, o.headersTimeoutMs),
    };
    const server = o.tls
      ? https.createServer({ ...common, cert: o.tls.cert, key: o.tls.key, handshakeTimeout: o.headersTimeoutMs }, o.onRequest)
      : http.createServer(common, o.onRequest);
    server.timeout = o.idleTimeoutMs;
    this.server = server;
    server.on('connection', (sock: Socket) => this.admit(sock));
    // Node's own headers timeout does not cover a connection that has sent nothing (or a
    // TLS handshake that never ends): every connection must complete its first request's
    // headers within headersTimeoutMs, or it is closed
    server.on('request', (req: http.IncomingMessage) => this.firstRequest(req.socket));
    const wss = new WebSocketServer({ noServer: true, maxPayload: o.maxMessageBytes, perMessageDeflate: false });
    this.wss = wss;
    server.on('upgrade', (req: http.IncomingMessage, socket: Socket, head: Buffer) => {
      if ((req.url ?? '').split('?')[0] !== '/relay' || !o.accepting()) { socket.destroy(); return; }
      this.firstRequest(socket);
      const remote = socket.remoteAddress ?? '';
      wss.handleUpgrade(req, socket, head, (ws) => o.onWebSocket(ws, remote));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.port, o.host, () => { server.off('error', reject); resolve(); });
    });
    const a = server.address();
    return typeof a === 'object' && a ? a.port : o.port;
  }

  private admit(sock: Socket): void {
    const o = this.o;
    if (this.open >= o.maxConnections) { o.refused('total'); sock.destroy(); return; }
    const src = o.sources.get(sourceKey(sock.remoteAddress ?? ''));
    if (src.httpConnections >= o.maxConnectionsPerSource) { o.refused('per_source'); sock.destroy(); return; }
    this.open++;
    src.httpConnections++;
    const deadline = setTimeout(() => sock.destroy(), o.headersTimeoutMs);
    deadline.unref();
    this.deadlines.set(sock, deadline);
    sock.once('close', () => { this.open--; src.httpConnections--; clearTimeout(deadline); });
  }

  /** Headers arrived on this connection (for TLS: on the raw socket under it). */
  private firstRequest(sock: Socket): void {
    const raw = (sock as Socket & { _parent?: Socket })._parent ?? sock;
    const t = this.deadlines.get(raw);
    if (t) { clearTimeout(t); this.deadlines.delete(raw); }
  }

  async stop(): Promise<void> {
    this.wss?.close();
    const s = this.server;
    if (!s) return;
    const closed = new Promise<void>((r) => s.close(() => r()));
    s.closeAllConnections();
    await closed;
  }
}
