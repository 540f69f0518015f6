// netcheck's TCP half: can this host open the relay's WebSocket (the agent's fallback where
// UDP is blocked), directly and, when the environment names an HTTP proxy, through it
// (HTTP CONNECT, as networks that allow only HTTPS out require). The relay accepts the
// upgrade before any registration, so a successful open is the whole check; the socket is
// closed at once.
//
// Which proxy: HTTPS_PROXY, else HTTP_PROXY, else ALL_PROXY (either case), unless NO_PROXY
// names the relay host. (The relay client's own proxy support, src/relay/ws-proxy.ts on the
// relay branch, should replace proxyFor and ConnectAgent here once it is on main.)
import { Agent, request, type ClientRequestArgs } from 'node:http';
import type { Duplex } from 'node:stream';
import WebSocket from 'ws';

/** an open takes a TCP handshake and one HTTP exchange; past this the relay is not reachable in any useful sense */
export const WS_TIMEOUT_MS = 5000;

export interface WsProbe {
  url: string;
  ok: boolean;
  /** from connect to the upgraded socket: about two round trips (TCP, then HTTP) */
  openMs?: number;
  error?: string;
}

type Env = Record<string, string | undefined>;
const envOf = (env: Env, name: string): string | undefined => env[name] || env[name.toLowerCase()] || undefined;

/** The host of a NO_PROXY entry: `[::1]:8080` → `::1`, `host:8080` → `host`; a bare IPv6 address as it is. */
function entryHost(entry: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(entry);
  if (bracketed) return bracketed[1]!;
  return entry.split(':').length === 2 ? entry.replace(/:\d+$/, '') : entry;
}

/** NO_PROXY: comma-separated hosts or domain suffixes (`.example.org`, `example.org`), optional `:port`, `*` for all. */
function bypassed(host: string, noProxy: string | undefined): boolean {
  if (!noProxy) return false;
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return noProxy.split(/[,\s]+/).filter(Boolean).some((entry) => {
    if (entry === '*') return true;
    const d = entryHost(entry.toLowerCase()).replace(/^\*?\./, '');
    return h === d || h.endsWith(`.${d}`);
  });
}

/** The proxy URL for a relay WebSocket URL from the environment, or undefined (direct). */
export function proxyFor(wsUrl: string, env: Env = process.env): string | undefined {
  const proxy = envOf(env, 'HTTPS_PROXY') ?? envOf(env, 'HTTP_PROXY') ?? envOf(env, 'ALL_PROXY');
  return proxy && !bypassed(new URL(wsUrl).hostname, envOf(env, 'NO_PROXY')) ? proxy : undefined;
}

/** An http.Agent whose connections are tunnels through an HTTP proxy (CONNECT host:port). */
export class ConnectAgent extends Agent {
  private readonly proxy: URL;

  constructor(proxyUrl: string) {
    super({ keepAlive: false });
    this.proxy = new URL(proxyUrl);
    if (this.proxy.protocol !== 'http:') throw new Error(`proxy ${proxyUrl}: only http:// proxies are supported`);
  }

  override createConnection(options: ClientRequestArgs, done?: (err: Error | null, stream: Duplex) => void): Duplex | null | undefined {
    const target = `${options.host?.includes(':') ? `[${options.host}]` : options.host}:${options.port}`;
    const auth = this.proxy.username ? { 'proxy-authorization': `Basic ${Buffer.from(`${decodeURIComponent(this.proxy.username)}:${decodeURIComponent(this.proxy.password)}`).toString('base64')}` } : {};
    let answered = false;
    const fail = (why: string): void => {
      if (answered) return;
      answered = true;
      done?.(new Error(`proxy ${this.proxy.host}: ${why}`), undefined as unknown as Duplex);
    };
    const req = request({ host: this.proxy.hostname, port: this.proxy.port || 80, method: 'CONNECT', path: target, headers: { host: target, ...auth }, agent: false, timeout: WS_TIMEOUT_MS });
    req.once('connect', (res, socket) => {
      if (res.statusCode === 200) { answered = true; done?.(null, socket); return; }
      socket.destroy();
      fail(`CONNECT ${target} answered ${res.statusCode} ${res.statusMessage ?? ''}`.trimEnd());
    });
    req.once('timeout', () => { req.destroy(); fail(`no answer to CONNECT ${target} within ${WS_TIMEOUT_MS} ms`); });
    req.once('error', (e: NodeJS.ErrnoException) => fail(e.code ?? e.message));
    req.end();
    return undefined;
  }
}

/** Opens `url` (through `agent` if given) and closes it again. Never rejects. */
export function probeWebSocket(url: string, agent?: Agent): Promise<WsProbe> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    let settled = false;
    const finish = (r: Omit<WsProbe, 'url'>): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ws.terminate();
      resolve({ url, ...r });
    };
    const ws = new WebSocket(url, { handshakeTimeout: WS_TIMEOUT_MS, perMessageDeflate: false, ...(agent ? { agent } : {}) });
    // the handshake timeout covers the HTTP exchange; this covers a proxy that never answers too
    const timer = setTimeout(() => finish({ ok: false, error: `not open within ${WS_TIMEOUT_MS} ms` }), WS_TIMEOUT_MS + 500);
    ws.once('open', () => finish({ ok: true, openMs: performance.now() - t0 }));
    ws.once('unexpected-response', (_req, res) => finish({ ok: false, error: `HTTP ${res.statusCode} instead of a WebSocket upgrade` }));
    // `on`, not `once`: terminate() of a socket still connecting emits one more error
    ws.on('error', (e: NodeJS.ErrnoException) => finish({ ok: false, error: e.code ?? e.message }));
  });
}
