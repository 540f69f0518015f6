// What `mpyc-relay serve` can be told and how each value is checked: the option table
// (flags, MPYC_RELAY_* variables and the --config file share it: src/common/config.ts) and
// settingsFrom, which turns a Config into checked settings. Every error names where the
// bad value came from (the flag, the variable or the file line: config.origin).
import { readFileSync } from 'node:fs';
import { UsageError, type OptionTable } from '../common/cli.js';
import type { Config } from '../common/config.js';
import { parseLogFormat, parseLogLevel, LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from '../common/log.js';
import { PeerKey } from '../common/peer-key.js';
import { LOBBY_CLI_OPTIONS, lobbyOptionFromFlags } from '../lobby/relay-flags.js';
import type { LobbyOption } from '../lobby/http.js';
import { DEFAULT_LIMITS } from './limit-defaults.js';
import type { HostPort, RelayLimits } from './server.js';

export const ENV_PREFIX = 'MPYC_RELAY';

/** Numeric limits: flag, RelayServer option, help. Defaults come from DEFAULT_LIMITS. */
export const LIMIT_FLAGS: Array<[flag: string, option: keyof RelayLimits, help: string]> = [
  ['source-rate', 'sourceRatePps', 'forwarding from one source address (all its agents), packets/s; 0 = off'],
  ['dest-rate', 'destRatePps', 'what one agent receives from all senders together, packets/s; 0 = off'],
  ['global-rate', 'globalRatePps', 'forwarding of the whole relay, packets/s; 0 = off'],
  ['handshake-rate', 'handshakeRatePerSource', 'registration handshakes per source address per second; 0 = off'],
  ['handshake-rate-global', 'handshakeRateGlobal', 'registration handshakes per second, whole relay; 0 = off'],
  ['stun-rate', 'stunRatePerSource', 'STUN answers per source address per second; 0 = off'],
  ['max-sources', 'maxSources', 'source addresses with their own budgets (beyond: one shared budget)'],
  ['max-connections', 'maxConnections', 'open HTTP/WebSocket connections'],
  ['max-connections-per-source', 'maxConnectionsPerSource', 'open HTTP/WebSocket connections from one address'],
  ['headers-timeout', 'headersTimeoutMs', 'ms for a request\'s headers (and a TLS handshake)'],
  ['idle-timeout', 'idleTimeoutMs', 'ms an idle HTTP connection is kept'],
  ['ws-register-timeout', 'wsRegisterTimeoutMs', 'ms a WebSocket may stay open without registering'],
];

const S = { kind: 'string' } as const;
const N = { kind: 'string', value: 'N' } as const;

/** Every serve option (one name for the flag, the file key and MPYC_RELAY_<NAME>). */
export const SERVE_OPTIONS = {
  key: { kind: 'string', value: 'FILE' }, udp: { kind: 'string', value: 'HOST:PORT' }, http: { kind: 'string', value: 'HOST:PORT' },
  'tls-cert': { kind: 'string', value: 'FILE' }, 'tls-key': { kind: 'string', value: 'FILE' }, 'public-host': { kind: 'string', value: 'HOST' },
  allow: { kind: 'string', value: 'FILE' }, rate: N, burst: N, 'max-payload': N, 'max-agents': N, keepalive: N, expiry: N,
  'log-level': { kind: 'string', value: 'LEVEL' }, 'log-format': S, workers: N, 'stun-alt-port': N,
  ...Object.fromEntries(LIMIT_FLAGS.map(([f]) => [f, N])),
  ...Object.fromEntries(Object.keys(LOBBY_CLI_OPTIONS).map((f) => [f, N])),
} as const satisfies OptionTable;
export type ServeOptions = typeof SERVE_OPTIONS;

/** The command line adds the file to read and --check. */
export const SERVE_COMMAND_LINE = { ...SERVE_OPTIONS, config: { kind: 'string', value: 'FILE' }, check: { kind: 'boolean' } } as const;

/** Options a SIGHUP applies without a restart. */
export const RELOADABLE: readonly string[] = ['allow', 'log-level'];

export interface ServeSettings {
  keyPath: string;
  udp: HostPort;
  http: HostPort | undefined;
  tls: { cert: Buffer; key: Buffer } | undefined;
  publicHost: string | undefined;
  allowPath: string | undefined;
  logLevel: LogLevel;
  logFormat: LogFormat | undefined;
  workers: number;
  stunAltPort: number;
  ratePps: number;
  burst: number;
  maxPayload: number;
  maxAgents: number;
  keepaliveS: number;
  expiryS: number;
  limits: Partial<RelayLimits>;
  lobby: LobbyOption;
}

function parseHostPort(text: string, what: string): HostPort {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:]+):(\d+)$/.exec(text);
  if (!m) throw new UsageError(`${what}: expected HOST:PORT (IPv6 as [ADDR]:PORT), got ${JSON.stringify(text)}`);
  const port = Number(m[2]);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`${what}: port out of range: ${m[2]}`);
  return { host: m[1]!, port };
}

function parseCount(text: string | undefined, what: string, def: number, allowZero = false): number {
  if (text === undefined) return def;
  const n = /^\d{1,15}$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(n) || (n === 0 && !allowZero)) {
    throw new UsageError(`${what}: expected a ${allowZero ? 'non-negative' : 'positive'} integer, got ${JSON.stringify(text)}`);
  }
  return n;
}

function readPem(path: string, what: string): Buffer {
  try { return readFileSync(path); } catch (err) {
    throw new UsageError(`${what}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
}

/** One base64 agent key per line, '#' comments. */
export function loadAllowList(path: string): Set<string> {
  let text: string;
  try { text = readFileSync(path, 'utf8'); } catch (err) {
    throw new Error(`${path}: cannot read allow-list (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  const keys = new Set<string>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) return;
    keys.add(PeerKey.fromText(line, `${path}:${i + 1}`).text);
  });
  return keys;
}

/** Every value checked; errors name the flag, variable or file line that set it. */
export function settingsFrom(c: Config<ServeOptions>): ServeSettings {
  const at = (k: keyof ServeOptions & string): string => c.origin(k) === 'default' ? `--${k}` : c.origin(k);
  const str = (k: keyof ServeOptions & string): string | undefined => c.get(k) as string | undefined;
  const count = (k: keyof ServeOptions & string, def: number, allowZero = false): number => parseCount(str(k), at(k), def, allowZero);
  const keyPath = str('key');
  if (!keyPath) throw new UsageError('serve: --key FILE is required (create one with: mpyc-relay keygen --out FILE)');
  const logLevel = parseLogLevel(str('log-level') ?? 'info');
  if (!logLevel) throw new UsageError(`${at('log-level')}: unknown level ${JSON.stringify(str('log-level'))} (one of ${LOG_LEVELS.join(', ')})`);
  let logFormat: LogFormat | undefined;
  if (str('log-format') !== undefined) {
    logFormat = parseLogFormat(str('log-format')!) ?? undefined;
    if (!logFormat) throw new UsageError(`${at('log-format')}: expected ${LOG_FORMATS.join(' or ')}, got ${JSON.stringify(str('log-format'))}`);
  }
  const udp = parseHostPort(str('udp') ?? '0.0.0.0:3478', at('udp'));
  const http = str('http') === 'off' ? undefined : parseHostPort(str('http') ?? '0.0.0.0:8080', at('http'));
  if ((str('tls-cert') === undefined) !== (str('tls-key') === undefined)) throw new UsageError('--tls-cert and --tls-key go together');
  const tls = str('tls-cert') ? { cert: readPem(str('tls-cert')!, at('tls-cert')), key: readPem(str('tls-key')!, at('tls-key')) } : undefined;
  if (tls && !http) throw new UsageError('--tls-cert needs the HTTP port (not --http off)');
  const stunAltPort = count('stun-alt-port', 0, true);
  if (stunAltPort > 65535) throw new UsageError(`${at('stun-alt-port')}: port out of range: ${stunAltPort}`);
  if (stunAltPort !== 0 && stunAltPort === udp.port) throw new UsageError(`${at('stun-alt-port')}: must differ from the --udp port`);
  const ratePps = count('rate', DEFAULT_LIMITS.ratePps);
  const limits: Partial<RelayLimits> = {};
  for (const [f, o, h] of LIMIT_FLAGS) limits[o] = count(f as keyof ServeOptions & string, DEFAULT_LIMITS[o as keyof typeof DEFAULT_LIMITS], h.includes('0 = off'));
  let lobby: LobbyOption;
  try {
    lobby = lobbyOptionFromFlags(Object.fromEntries(Object.keys(LOBBY_CLI_OPTIONS).map((k) => [k, str(k as keyof ServeOptions & string)])));
  } catch (e) { throw new UsageError((e as Error).message); }
  return {
    keyPath, udp, http, tls, publicHost: str('public-host'), allowPath: str('allow'), logLevel, logFormat,
    workers: count('workers', 1), stunAltPort, ratePps, burst: count('burst', Math.max(1, Math.floor(ratePps / 2))),
    maxPayload: count('max-payload', 1400), maxAgents: count('max-agents', 100_000), keepaliveS: count('keepalive', 10), expiryS: count('expiry', 35),
    limits, lobby,
  };
}
