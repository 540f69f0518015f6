// `mpyc-relay serve`'s settings: turns a Config (flags > MPYC_RELAY_* > config file, see
// serve-options.ts for the table) into checked values. Every error is a UsageError (exit 2)
// naming where the bad value came from: a flag, a variable, or file:line:column: key.
// Files named by the settings (key, certificate, allow-list) are read by serve.ts.
import { UsageError, hostPortIn, integerIn } from '../common/cli.js';
import type { Config } from '../common/config.js';
import { logSettingsIn, type LogFormat, type LogLevel } from '../common/log.js';
import { lobbyOptionFromFlags } from '../lobby/relay-flags.js';
import type { LobbyOption } from '../lobby/http.js';
import type { HostPort, RelayLimits } from './server.js';
import { DEFAULT_HTTP, DEFAULT_UDP, SERVE_DEFAULTS, SERVE_OPTIONS, type NumberRange, type ServeOptionName, type ServeOptions } from './serve-options.js';

export interface ServeSettings {
  keyPath: string;
  udp: HostPort;
  /** undefined: --http off */
  http: HostPort | undefined;
  tls: { certPath: string; keyPath: string } | undefined;
  /** the host written into the relay address; undefined on a wildcard bind without --public-host */
  publicHost: string | undefined;
  allowPath: string | undefined;
  workers: number;
  /** the second STUN port (OTHER-ADDRESS); 0 = off */
  stunAltPort: number;
  /** the port came from `auto`: a bind failure leaves the relay without it (warned), not down */
  stunAltAuto: boolean;
  limits: RelayLimits;
  maxPayload: number;
  maxAgents: number;
  keepaliveS: number;
  expiryS: number;
  lobby: LobbyOption;
  logLevel: LogLevel;
  logFormat: LogFormat;
  /** every option as the relay uses it (null: not set, off), for --check */
  shown: Record<ServeOptionName, string | number | null>;
}

type ServeConfig = Config<ServeOptions>;

const LIMIT_OF = {
  rate: 'ratePps', burst: 'burst', 'source-rate': 'sourceRatePps', 'dest-rate': 'destRatePps', 'global-rate': 'globalRatePps',
  'handshake-rate': 'handshakeRatePerSource', 'handshake-rate-global': 'handshakeRateGlobal', 'stun-rate': 'stunRatePerSource',
  'max-sources': 'maxSources', 'max-connections': 'maxConnections', 'max-connections-per-source': 'maxConnectionsPerSource',
  'headers-timeout': 'headersTimeoutMs', 'idle-timeout': 'idleTimeoutMs', 'ws-register-timeout': 'wsRegisterTimeoutMs',
} as const satisfies Partial<Record<ServeOptionName, keyof RelayLimits>>;

const LOBBY_KEYS = ['lobbies', 'lobbies-per-source', 'lobby-parties', 'lobby-ttl'] as const;

export const isWildcard = (host: string): boolean => host === '0.0.0.0' || host === '::';



type NumberName = { [K in ServeOptionName]: ServeOptions[K] extends { range: NumberRange } ? K : never }[ServeOptionName];

/** A number option: its checked value, else its default (`fallback` for one derived from another). */
function numberOf(c: ServeConfig, name: NumberName, fallback?: number): number {
  const text = c.get(name);
  // (stun-alt-port's default, auto, is resolved by its caller before this is asked)
  if (text === undefined) return fallback ?? (SERVE_DEFAULTS[name as keyof typeof SERVE_DEFAULTS] as number);
  return integerIn(text, c.origin(name), SERVE_OPTIONS[name].range.min, SERVE_OPTIONS[name].range.max);
}

/** The lobby limits; lobbyOptionFromFlags checks each, and its message is re-worded to name the value's origin. */
function lobbyOf(c: ServeConfig): LobbyOption {
  for (const k of LOBBY_KEYS) {
    const text = c.get(k);
    if (text === undefined) continue;
    try { lobbyOptionFromFlags({ [k]: text }); } catch (err) {
      throw new UsageError(`${c.origin(k)}: ${(err as Error).message.replace(`--${k}: `, '')}`);
    }
  }
  return lobbyOptionFromFlags(Object.fromEntries(LOBBY_KEYS.map((k) => [k, c.get(k)])));
}

/** Checks every value of a config and turns it into settings. */
export function settingsFrom(c: ServeConfig): ServeSettings {
  const keyPath = c.get('key');
  if (keyPath === undefined) throw new UsageError('--key FILE is required (or "key" in the config file, MPYC_RELAY_KEY; create one with: mpyc-relay keygen --out FILE)');
  const { logLevel, logFormat } = logSettingsIn(c.get('log-level'), c.get('log-format'), (k) => c.origin(k));
  const udp = hostPortIn(c.get('udp') ?? DEFAULT_UDP, c.origin('udp'));
  const httpText = c.get('http') ?? DEFAULT_HTTP;
  const http = httpText === 'off' ? undefined : hostPortIn(httpText, c.origin('http'));
  const certPath = c.get('tls-cert');
  const tlsKeyPath = c.get('tls-key');
  if ((certPath === undefined) !== (tlsKeyPath === undefined)) {
    throw new UsageError(`--tls-cert and --tls-key go together (${certPath !== undefined ? `tls-cert from ${c.origin('tls-cert')}` : `tls-key from ${c.origin('tls-key')}`}, the other not set)`);
  }
  if (certPath !== undefined && !http) throw new UsageError(`${c.origin('tls-cert')}: TLS needs the HTTP port (${c.origin('http')} is off)`);
  const publicHost = c.get('public-host') ?? (isWildcard(udp.host) ? undefined : udp.host);

  const limits = {} as RelayLimits;
  for (const [name, option] of Object.entries(LIMIT_OF) as [keyof typeof LIMIT_OF, keyof RelayLimits][]) {
    if (name !== 'burst') limits[option] = numberOf(c, name);
  }
  limits.burst = numberOf(c, 'burst', Math.max(1, Math.floor(limits.ratePps / 2)));
  const keepaliveS = numberOf(c, 'keepalive');
  const expiryS = numberOf(c, 'expiry');
  // an agent refreshes its registration with each keepalive; expiring sooner drops live agents
  if (expiryS <= keepaliveS) throw new UsageError(`${c.origin('expiry')}: ${expiryS} s must be more than the keepalive interval (${keepaliveS} s, ${c.origin('keepalive') === 'default' ? 'the default' : `from ${c.origin('keepalive')}`})`);
  // auto (the default): the UDP port + 1 when the UDP port is fixed, best effort (a taken
  // port is skipped with a warning); an explicit port must bind
  const altText = c.get('stun-alt-port');
  const stunAltAuto = altText === undefined || altText === 'auto';
  if (!stunAltAuto && !/^\d+$/.test(altText)) throw new UsageError(`${c.origin('stun-alt-port')}: expected a port 0..65535 or auto, got ${JSON.stringify(altText)}`);
  const stunAltPort = stunAltAuto ? (udp.port !== 0 && udp.port < 65535 ? udp.port + 1 : 0) : numberOf(c, 'stun-alt-port');
  if (stunAltPort !== 0 && stunAltPort === udp.port) throw new UsageError(`${c.origin('stun-alt-port')}: the second STUN port must differ from the --udp port (${udp.port})`);
  const lobby = lobbyOf(c);
  const s: Omit<ServeSettings, 'shown'> = {
    keyPath, udp, http, tls: certPath !== undefined ? { certPath, keyPath: tlsKeyPath! } : undefined, publicHost,
    allowPath: c.get('allow'), workers: numberOf(c, 'workers'), stunAltPort, stunAltAuto, limits,
    maxPayload: numberOf(c, 'max-payload'), maxAgents: numberOf(c, 'max-agents'), keepaliveS, expiryS, lobby, logLevel, logFormat,
  };
  const lobbyShown = (k: (typeof LOBBY_KEYS)[number]): number | null =>
    (lobby === false ? (k === 'lobbies' ? 0 : null) : Number(c.get(k) ?? SERVE_DEFAULTS[k]));
  const hostPort = (h: HostPort): string => (h.host.includes(':') ? `[${h.host}]:${h.port}` : `${h.host}:${h.port}`);
  const shown: ServeSettings['shown'] = {
    key: keyPath, udp: hostPort(udp), http: http ? hostPort(http) : 'off', 'tls-cert': certPath ?? null, 'tls-key': tlsKeyPath ?? null,
    'public-host': publicHost ?? null, allow: s.allowPath ?? null,
    ...(Object.fromEntries(Object.entries(LIMIT_OF).map(([name, option]) => [name, limits[option]])) as Record<keyof typeof LIMIT_OF, number>),
    workers: s.workers, 'stun-alt-port': stunAltPort === 0 ? null : stunAltAuto ? `auto (${stunAltPort})` : stunAltPort, 'max-payload': s.maxPayload, 'max-agents': s.maxAgents, keepalive: keepaliveS, expiry: expiryS,
    lobbies: lobbyShown('lobbies'), 'lobbies-per-source': lobbyShown('lobbies-per-source'), 'lobby-parties': lobbyShown('lobby-parties'), 'lobby-ttl': lobbyShown('lobby-ttl'),
    'log-level': logLevel, 'log-format': logFormat,
  };
  return { ...s, shown };
}
