// The relay side of the lobby: `POST /lobby` on the relay's HTTP port (mounted by
// src/relay/server.ts), the store's sweep timer, and the lobby metrics in the relay's
// registry. Bodies are read up to the largest valid request and no further.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIPv6 } from 'node:net';
import { Counter, Gauge, type Registry } from 'prom-client';
import { DEFAULT_LOBBY_LIMITS, HARD_MAX_PARTIES, LobbyStore, type LobbyLimits } from './store.js';
import { HTTP_STATUS, LOBBY_PATH, OP_CONFIRM, OP_CREATE, OP_ENTRY, OP_READ, STATUS, decodeRequest, encodeResponse, maxRequestLen, statusName, type Response } from './wire.js';

const SWEEP_MS = 5000;
const OP_NAMES: Record<number, string> = { [OP_CREATE]: 'create', [OP_ENTRY]: 'entry', [OP_CONFIRM]: 'confirm', [OP_READ]: 'read' };

/**
 * The per-source key of a client address: IPv4 as is (also when IPv4-mapped), IPv6 by its
 * /64, since one host commonly holds a whole /64 and could otherwise rotate addresses.
 */
export function sourceKey(address: string): string {
  const a = address.replace(/%.*$/, '');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a);
  if (mapped) return mapped[1]!;
  if (!isIPv6(a)) return a;
  const [head = '', tail] = a.split('::');
  const groups = (s: string): string[] => (s ? s.split(':').flatMap((g) => (g.includes('.') ? ['0', '0'] : [g])) : []);
  const h = groups(head);
  const t = tail === undefined ? [] : groups(tail);
  const all = [...h, ...Array<string>(Math.max(0, 8 - h.length - t.length)).fill('0'), ...t];
  return `${all.slice(0, 4).map((g) => parseInt(g, 16).toString(16)).join(':')}::/64`;
}

/** How src/relay/server.ts turns lobbies on: limits (missing ones default), or false for none. */
export type LobbyOption = Partial<LobbyLimits> | false;

/** The relay's lobby service, or undefined when lobbies are off (or the relay has no HTTP port). */
export function createLobbyService(option: LobbyOption | undefined, hasHttp: boolean, registry: Registry): LobbyService | undefined {
  if (option === false || !hasHttp) return undefined;
  const limits = { ...DEFAULT_LOBBY_LIMITS, ...option };
  if (limits.maxLobbies === 0) return undefined;
  for (const [k, v] of Object.entries(limits)) if (!Number.isInteger(v) || v < 1) throw new Error(`lobby limit ${k} must be a positive integer, got ${v}`);
  if (limits.maxParties < 2 || limits.maxParties > HARD_MAX_PARTIES) throw new Error(`lobby party limit must be 2..${HARD_MAX_PARTIES}, got ${limits.maxParties}`);
  return new LobbyService(limits, registry);
}

export class LobbyService {
  readonly store: LobbyStore;
  private readonly maxBody: number;
  private readonly timer: NodeJS.Timeout;
  private readonly requests: Counter;

  constructor(limits: LobbyLimits, registry: Registry, private readonly clock: () => number = () => performance.now()) {
    this.store = new LobbyStore(limits);
    this.maxBody = maxRequestLen(limits.maxParties);
    this.timer = setInterval(() => this.store.sweep(this.clock()), SWEEP_MS);
    this.timer.unref();
    const store = this.store;
    new Gauge({ name: 'mpyc_relay_lobbies', help: 'Open lobbies', registers: [registry], collect() { this.set(store.openLobbies); } });
    new Gauge({ name: 'mpyc_relay_lobby_members', help: 'Members (entries) in open lobbies', registers: [registry], collect() { this.set(store.members); } });
    this.requests = new Counter({ name: 'mpyc_relay_lobby_requests_total', help: 'Lobby requests, by operation and result', labelNames: ['op', 'status'], registers: [registry] });
    const mirror = (name: string, help: string, read: () => number): void => {
      let seen = 0;
      new Counter({ name, help, registers: [registry], collect() { const v = read(); if (v > seen) { this.inc(v - seen); seen = v; } } });
    };
    mirror('mpyc_relay_lobbies_created_total', 'Lobbies created', () => store.counts.created);
    mirror('mpyc_relay_lobbies_expired_total', 'Lobbies that reached their expiry', () => store.counts.expired);
  }

  /** Whether this request path is the lobby's. */
  serves(path: string | undefined): boolean {
    return path === LOBBY_PATH;
  }

  /** Serves one request to LOBBY_PATH; never throws. */
  handle(req: IncomingMessage, res: ServerResponse): void {
    if (req.method !== 'POST') {
      res.writeHead(405, { allow: 'POST', 'content-type': 'text/plain' }).end('POST a lobby request (docs/protocol/lobby.md)\n');
      return;
    }
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > this.maxBody) { this.reply(res, 'invalid', { status: STATUS.TOO_LARGE }, true); return; }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (c: Buffer) => {
      if (done) return;
      size += c.length;
      if (size > this.maxBody) { done = true; this.reply(res, 'invalid', { status: STATUS.TOO_LARGE }, true); return; }
      chunks.push(c);
    });
    req.on('end', () => {
      if (done) return;
      done = true;
      const parsed = decodeRequest(Buffer.concat(chunks));
      if (!parsed) { this.reply(res, 'invalid', { status: STATUS.BAD_REQUEST }); return; }
      let response: Response;
      try {
        response = this.store.handle(parsed, sourceKey(req.socket.remoteAddress ?? ''), this.clock());
      } catch {
        response = { status: STATUS.BAD_REQUEST };
      }
      this.reply(res, OP_NAMES[parsed.op]!, response);
    });
    req.on('error', () => { done = true; });
  }

  close(): void {
    clearInterval(this.timer);
  }

  private reply(res: ServerResponse, op: string, r: Response, close = false): void {
    const name = statusName(r.status);
    this.requests.inc({ op, status: name.toLowerCase() });
    const body = encodeResponse(r);
    res.writeHead(HTTP_STATUS[name], { 'content-type': 'application/octet-stream', 'content-length': body.length, ...(close ? { connection: 'close' } : {}) });
    res.end(body);
  }
}
