// The agent's local control socket: a Unix domain socket that `mpyc-agent status` and
// `mpyc-agent ping` ask.
//
// Protocol: newline-delimited JSON, any number of requests per connection, answered in order.
//   request  = {"method": "status"}\n
//            | {"method": "metrics"}\n
//            | {"method": "ping", "params": {"party": N, "count"?: 1..100 (1), "intervalMs"?: 10..10000 (1000)}}\n
//              (each with an optional "id": any JSON value, echoed in the answer)
//   response = {"id"?: any, "ok": true, "result": ...}\n  |  {"id"?: any, "ok": false, "error": "..."}\n
//   results: status → AgentStatus, metrics → Prometheus text, ping → PingResult
//            ({"peerIndex": N, "samples": [{"seq", "rttMs"? (absent: no answer within 2 s), "path"}]}).
// The request format and its bounds are in control-request.ts. Requests are bounded
// (MAX_REQUEST_BYTES per line, else an error and the connection is closed); malformed input
// is answered with an error, never crashes the agent. A connection idle for IDLE_TIMEOUT_MS
// is closed; one waiting for an answer (a ping takes count × interval) is not idle.
//
// Security: the socket gives out peer addresses and keys' traffic figures, so it lives in
// a directory only this user can enter ($XDG_RUNTIME_DIR/mpyc-agent or
// /tmp/mpyc-agent-$UID, mode 0700, checked to be ours) and is itself mode 0600.
import { createServer, connect, type Server, type Socket } from 'node:net';
import { chmodSync, lstatSync, mkdirSync, readdirSync, unlinkSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { readKeyFile } from '../common/keys.js';
import { PeerKey } from '../common/peer-key.js';
import { UsageError } from '../common/cli.js';
import { parseControlRequest, type ControlMethod } from './control-request.js';
import type { AgentStatus, PingOptions, PingResult } from './types.js';

export const MAX_REQUEST_BYTES = 64 * 1024;
export const MAX_CONNECTIONS = 32;
export const IDLE_TIMEOUT_MS = 30_000;
/** sun_path is 108 bytes on Linux including the terminating NUL */
export const MAX_SOCKET_PATH = 107;

export interface ControlHandlers {
  status(): AgentStatus;
  metrics?(): Promise<string>;
  ping?(peerIndex: number, opts: PingOptions): Promise<PingResult>;
}

/**
 * Why a control request failed: `unreachable` (no agent listens: ENOENT, ECONNREFUSED, or it
 * closed the connection unanswered), `timeout`, `agent` (it answered with an error), `protocol`
 * (an answer we cannot read), `setup` (creating the socket or its directory).
 */
export type ControlFailure = 'unreachable' | 'timeout' | 'agent' | 'protocol' | 'setup';

export class ControlError extends Error {
  override name = 'ControlError';
  constructor(message: string, readonly reason: ControlFailure = 'setup') {
    super(message);
  }
}

/** `$XDG_RUNTIME_DIR/mpyc-agent` if set, else `/tmp/mpyc-agent-$UID`. */
export function defaultControlDir(env: NodeJS.ProcessEnv = process.env, uid: number = process.getuid?.() ?? 0): string {
  const xdg = env.XDG_RUNTIME_DIR;
  return xdg && xdg.startsWith('/') ? join(xdg, 'mpyc-agent') : `/tmp/mpyc-agent-${uid}`;
}

/** The socket of the agent with this public key: a short hash, so several agents (parties) can share a machine. */
export function controlSocketPath(publicKeyB64: string, dir: string = defaultControlDir()): string {
  const id = createHash('sha256').update(publicKeyB64).digest('hex').slice(0, 16);
  return join(dir, `agent-${id}.sock`);
}

/** Creates the directory 0700 if needed and refuses one that others could enter or that is not ours. */
export function ensureControlDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new ControlError(`${dir}: cannot create control directory (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  const st = lstatSync(dir);
  if (!st.isDirectory()) throw new ControlError(`${dir}: not a directory (a symlink or file is in the way)`);
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) throw new ControlError(`${dir}: owned by uid ${st.uid}, not by us (${uid}); refusing to put the control socket there`);
  if ((st.mode & 0o077) !== 0) throw new ControlError(`${dir}: mode ${(st.mode & 0o777).toString(8)} lets others in; fix with: chmod 700 ${dir}`);
}

/** Control sockets in a directory (for `mpyc-agent status` without --key or --control). */
export function listControlSockets(dir: string = defaultControlDir()): string[] {
  try {
    return readdirSync(dir).filter((n) => /^agent-[0-9a-f]{16}\.sock$/.test(n)).sort().map((n) => join(dir, n));
  } catch {
    return [];
  }
}

/**
 * The socket of the agent a command talks to: --control PATH, else the one derived from
 * --key FILE, else the only agent socket in the default directory.
 */
export function findControlSocket(control: string | undefined, keyFile: string | undefined): string {
  if (control !== undefined) return control;
  if (keyFile !== undefined) {
    const kp = readKeyFile(keyFile, { keygenCommand: 'mpyc-agent keygen' });
    kp.privateKey.fill(0);
    return controlSocketPath(PeerKey.fromBytes(kp.publicKey).text);
  }
  const found = listControlSockets();
  if (found.length === 0) throw new ControlError(`no running agent found in ${defaultControlDir()} (start one with: mpyc-agent up SESSION --key FILE)`, 'unreachable');
  if (found.length > 1) throw new UsageError(`several agents run here; choose one with --key FILE or --control PATH:\n  ${found.join('\n  ')}`);
  return found[0]!;
}

export interface ControlServer {
  readonly path: string;
  close(): Promise<void>;
}

function probe(path: string): Promise<'live' | 'dead'> {
  return new Promise((resolve) => {
    const s = connect({ path });
    const t = setTimeout(() => { s.destroy(); resolve('live'); }, 1000); // accepted but silent: something listens
    s.once('connect', () => { clearTimeout(t); s.destroy(); resolve('live'); });
    s.once('error', () => { clearTimeout(t); resolve('dead'); });
  });
}

/**
 * Listens on `path`. A stale socket file (nothing listening) is removed first; a live one
 * means another agent runs with the same key, which is an error, as is a non-socket file.
 */
export async function startControlServer(path: string, handlers: ControlHandlers, opts: { idleTimeoutMs?: number } = {}): Promise<ControlServer> {
  const idleTimeoutMs = opts.idleTimeoutMs ?? IDLE_TIMEOUT_MS;
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH) {
    throw new ControlError(`${path}: control socket path longer than ${MAX_SOCKET_PATH} bytes; choose a shorter --control path`);
  }
  let st;
  try { st = lstatSync(path); } catch { st = undefined; }
  if (st) {
    if (!st.isSocket()) throw new ControlError(`${path}: exists and is not a socket; refusing to remove it`);
    if ((await probe(path)) === 'live') throw new ControlError(`${path}: another agent is already listening on this control socket (same key running twice?)`);
    try { unlinkSync(path); } catch (e) { throw new ControlError(`${path}: cannot remove stale control socket (${(e as NodeJS.ErrnoException).code})`); }
  }
  const conns = new Set<Socket>();
  const server: Server = createServer({ allowHalfOpen: false }, (sock) => {
    if (conns.size >= MAX_CONNECTIONS) { sock.end(reply(undefined, { error: 'too many control connections' })); return; }
    conns.add(sock);
    sock.on('close', () => conns.delete(sock));
    serveConnection(sock, handlers, idleTimeoutMs);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(new ControlError(`${path}: cannot listen (${e.code ?? e.message})`)));
    server.listen({ path }, () => { server.removeAllListeners('error'); resolve(); });
  });
  server.on('error', () => { /* accept errors (EMFILE) must not crash the agent */ });
  try { chmodSync(path, 0o600); } catch (e) {
    server.close();
    throw new ControlError(`${path}: cannot set mode 0600 (${(e as NodeJS.ErrnoException).code})`);
  }
  let closed = false;
  return {
    path,
    close: () => new Promise<void>((resolve) => {
      if (closed) { resolve(); return; }
      closed = true;
      for (const c of conns) c.destroy();
      server.close(() => resolve());
      // remove our socket file only if it is still ours (not replaced by a newer agent)
      try { if (lstatSync(path).isSocket()) unlinkSync(path); } catch { /* already gone */ }
    }),
  };
}

function reply(id: unknown, r: { result: unknown } | { error: string }): string {
  const base = id === undefined ? {} : { id };
  return JSON.stringify('error' in r ? { ...base, ok: false, error: r.error } : { ...base, ok: true, result: r.result }) + '\n';
}

function serveConnection(sock: Socket, handlers: ControlHandlers, idleTimeoutMs: number): void {
  sock.setTimeout(idleTimeoutMs, () => sock.destroy());
  sock.on('error', () => { /* client went away */ });
  let buf = '';
  let dead = false;
  let pending = 0;
  let queue = Promise.resolve();
  sock.setEncoding('utf8');
  // a connection waiting for an answer is not idle; the idle clock runs again once all are sent
  const settled = (): void => { if (--pending === 0 && !sock.destroyed) sock.setTimeout(idleTimeoutMs); };
  sock.on('data', (chunk: string) => {
    if (dead) return;
    buf += chunk;
    for (;;) {
      const nl = buf.indexOf('\n');
      if (nl < 0) break;
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (pending++ === 0) sock.setTimeout(0);
      // answer in order even when a handler is asynchronous
      // (a throw that escaped handleLine would otherwise be an unhandled rejection: the process would exit)
      queue = queue.then(() => handleLine(line, handlers)).catch((e: unknown) => reply(undefined, { error: `internal error: ${String(e)}` }))
        .then((out) => { if (!sock.destroyed) sock.write(out); }).finally(settled);
    }
    if (Buffer.byteLength(buf) > MAX_REQUEST_BYTES) {
      buf = '';
      dead = true;
      queue = queue.then(() => { if (!sock.destroyed) sock.end(reply(undefined, { error: `request longer than ${MAX_REQUEST_BYTES} bytes` })); });
    }
  });
}

async function handleLine(line: string, handlers: ControlHandlers): Promise<string> {
  if (Buffer.byteLength(line) > MAX_REQUEST_BYTES) return reply(undefined, { error: `request longer than ${MAX_REQUEST_BYTES} bytes` });
  const parsed = parseControlRequest(line);
  if (!parsed.ok) return reply(parsed.id, { error: parsed.error });
  const { id, request } = parsed;
  try {
    switch (request.method) {
      case 'status': return reply(id, { result: handlers.status() });
      case 'metrics':
        if (!handlers.metrics) return reply(id, { error: 'metrics: not served by this agent' });
        return reply(id, { result: await handlers.metrics() });
      case 'ping':
        if (!handlers.ping) return reply(id, { error: 'ping: not served by this agent' });
        return reply(id, { result: await handlers.ping(request.party, { count: request.count, intervalMs: request.intervalMs }) });
    }
  } catch (e) {
    return reply(id, { error: `${request.method} failed: ${(e as Error).message}` });
  }
}

export interface ControlRequestOptions {
  params?: Record<string, unknown>;
  /** default 3000 ms */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** Sends one request and returns its result; rejects with the agent's error or a connection problem. */
export function controlRequest(path: string, method: ControlMethod, opts: ControlRequestOptions = {}): Promise<unknown> {
  const { params, timeoutMs = 3000, signal } = opts;
  return new Promise((resolve, reject) => {
    const s = connect({ path });
    let buf = '';
    const onAbort = (): void => done(new ControlError(`${path}: request aborted`, 'unreachable'));
    const done = (err: Error | null, v?: unknown): void => {
      clearTimeout(t);
      signal?.removeEventListener('abort', onAbort);
      s.destroy();
      if (err) reject(err); else resolve(v);
    };
    const t = setTimeout(() => done(new ControlError(`${path}: no answer within ${timeoutMs} ms`, 'timeout')), timeoutMs);
    if (signal?.aborted) { onAbort(); return; }
    signal?.addEventListener('abort', onAbort, { once: true });
    s.setEncoding('utf8');
    s.once('connect', () => s.write(JSON.stringify(params ? { method, params } : { method }) + '\n'));
    s.on('data', (d: string) => {
      buf += d;
      if (buf.length > 64 * 1024 * 1024) return done(new ControlError(`${path}: answer too large`, 'protocol'));
      const nl = buf.indexOf('\n');
      if (nl < 0) return undefined;
      let r: { ok?: boolean; result?: unknown; error?: string };
      try { r = JSON.parse(buf.slice(0, nl)) as typeof r; } catch { return done(new ControlError(`${path}: answer is not JSON`, 'protocol')); }
      return r.ok === true ? done(null, r.result) : done(new ControlError(`agent: ${r.error ?? 'unknown error'}`, 'agent'));
    });
    s.once('error', (e: NodeJS.ErrnoException) => {
      const hint = e.code === 'ENOENT' || e.code === 'ECONNREFUSED' ? ' (is the agent running? start it with: mpyc-agent up SESSION --key FILE)'
        : e.code === 'EACCES' ? ' (the agent runs as another user)' : '';
      done(new ControlError(`${path}: cannot connect (${e.code ?? e.message})${hint}`, 'unreachable'));
    });
    s.once('end', () => { if (!buf.includes('\n')) done(new ControlError(`${path}: connection closed without an answer`, 'unreachable')); });
  });
}

export async function queryStatus(path: string, timeoutMs = 3000, signal?: AbortSignal): Promise<AgentStatus> {
  const r = await controlRequest(path, 'status', { timeoutMs, ...(signal ? { signal } : {}) });
  if (typeof r !== 'object' || r === null || !Array.isArray((r as AgentStatus).peers)) throw new ControlError(`${path}: status answer has no peers list`, 'protocol');
  return r as AgentStatus;
}

/** One ping request (`count` samples `intervalMs` apart); waits as long as the agent needs for them. */
export async function requestPing(path: string, party: number, opts: { count: number; intervalMs: number }, signal?: AbortSignal): Promise<PingResult> {
  // every sample waits up to the agent's 2 s ping timeout; 3 s more for the socket itself
  const timeoutMs = opts.count * (opts.intervalMs + 2000) + 3000;
  const r = await controlRequest(path, 'ping', { params: { party, count: opts.count, intervalMs: opts.intervalMs }, timeoutMs, ...(signal ? { signal } : {}) });
  if (typeof r !== 'object' || r === null || !Array.isArray((r as PingResult).samples)) throw new ControlError(`${path}: ping answer has no samples`, 'protocol');
  return r as PingResult;
}
