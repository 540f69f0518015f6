// What `mpyc-relay serve` can be told: one table of options (flags, MPYC_RELAY_* variables
// and config file keys share these names; src/common/config.ts merges them), the bounds and
// default of every number, and the --help text made from the table. This module is what
// `--help` loads, so it imports nothing heavy: the server, sodium, ws and the lobby load
// only once the arguments are parsed (serve.ts).
import { EXIT_CODES_HELP } from '../common/cli.js';
import { LOG_FORMATS, LOG_LEVELS } from '../common/log.js';
import { DEFAULT_MAX_PAYLOAD } from './wire.js';
import { DEFAULT_LIMITS as L } from './limit-defaults.js';

export const ENV_PREFIX = 'MPYC_RELAY';

export const DEFAULT_UDP = '0.0.0.0:3478';
export const DEFAULT_HTTP = '0.0.0.0:8080';

/**
 * The relay's defaults: the limits from limit-defaults.ts (the module RelayServer takes them
 * from: no heavy imports), the constructor's other defaults and the lobby's (lobby/store.ts)
 * repeated here because those modules load ws and sodium, too slow for --help;
 * test/relay/cli-settings.test.ts fails when they disagree.
 */
export const SERVE_DEFAULTS = {
  rate: L.ratePps, 'source-rate': L.sourceRatePps, 'dest-rate': L.destRatePps, 'global-rate': L.globalRatePps,
  'handshake-rate': L.handshakeRatePerSource, 'handshake-rate-global': L.handshakeRateGlobal, 'stun-rate': L.stunRatePerSource,
  'max-sources': L.maxSources, 'max-connections': L.maxConnections, 'max-connections-per-source': L.maxConnectionsPerSource,
  'headers-timeout': L.headersTimeoutMs, 'idle-timeout': L.idleTimeoutMs,
  'ws-register-timeout': L.wsRegisterTimeoutMs, 'max-payload': DEFAULT_MAX_PAYLOAD, 'max-agents': 100_000, keepalive: 10, expiry: 35,
  workers: 1, 'stun-alt-port': 'auto', lobbies: 256, 'lobbies-per-source': 8, 'lobby-parties': 64, 'lobby-ttl': 3600,
} as const;
/** lobby/store.ts HARD_MAX_PARTIES */
export const LOBBY_MAX_PARTIES = 1000;

// Bounds of the numbers. Not peer-controlled, but a typo (an extra digit, a value in the
// wrong unit) should be refused at start rather than run as a relay nobody intended.
/** packets or handshakes per second: no host forwards 10^9 packets/s (one core: ~10^6) */
const MAX_RATE = 1_000_000_000;
/** table sizes (agents, sources, connections): 10^7 entries is gigabytes of memory */
const MAX_ENTRIES = 10_000_000;
/** milliseconds: a day; Node fires a timer longer than 2^31-1 ms at once */
const MAX_MS = 86_400_000;
/** relay processes: one per core; beyond a large machine's count they only compete */
const MAX_WORKERS = 256;

/** a number option: its bounds; the default is SERVE_DEFAULTS[name] (or derived, for burst) */
export interface NumberRange { min: number; max: number }

const rateRange: NumberRange = { min: 0, max: MAX_RATE };
const entriesRange: NumberRange = { min: 1, max: MAX_ENTRIES };
const msRange: NumberRange = { min: 1, max: MAX_MS };

/** every option of `serve` but --config and --check; `help` is one line or several ('\n') */
export const SERVE_OPTIONS = {
  key: { kind: 'string', value: 'FILE', help: 'relay private key file (from keygen; must be mode 0600); required' },
  udp: { kind: 'string', value: 'HOST:PORT', help: `UDP address for STUN and relay frames (default ${DEFAULT_UDP})` },
  http: { kind: 'string', value: 'HOST:PORT', help: `HTTP address for the WebSocket endpoint /relay, /metrics and\n/healthz (default ${DEFAULT_HTTP}); "off" disables HTTP` },
  'stun-alt-port': { kind: 'string', value: 'PORT|auto', help: 'a second UDP port on the --udp host that answers STUN only; both\nname each other in RFC 5780 OTHER-ADDRESS, so with one relay the\nagents still learn whether their NAT is symmetric (and then punch it\nby birthday probing). auto = the UDP port + 1, skipped with a warning\nif taken, off for an ephemeral --udp port; 0 = off; open it in the\nfirewall too', range: { min: 0, max: 65535 } },
  'tls-cert': { kind: 'string', value: 'FILE', help: 'PEM certificate chain: the HTTP port speaks https and wss' },
  'tls-key': { kind: 'string', value: 'FILE', help: 'PEM private key of that certificate (both or neither)' },
  'public-host': { kind: 'string', value: 'HOST', help: 'the name or address agents reach this relay at: goes into the\nprinted relay address. Needed when listening on a wildcard\naddress (0.0.0.0, ::); otherwise the --udp host is used' },
  allow: { kind: 'string', value: 'FILE', help: 'allow-list: one base64 agent public key per line, \'#\' comments;\nwithout it any agent key may register. Reloaded on SIGHUP.' },
  rate: { kind: 'string', value: 'PPS', help: 'per-agent forwarding limit in packets per second', range: { min: 1, max: MAX_RATE } },
  burst: { kind: 'string', value: 'N', help: 'per-agent burst in packets (default rate/2)', range: { min: 1, max: MAX_RATE } },
  'source-rate': { kind: 'string', value: 'N', help: 'forwarding from one source address (all its agents),\npackets/s; 0 = off', range: rateRange },
  'dest-rate': { kind: 'string', value: 'N', help: 'what one agent receives from all senders together,\npackets/s; 0 = off', range: rateRange },
  'global-rate': { kind: 'string', value: 'N', help: 'forwarding of the whole relay, packets/s; 0 = off', range: rateRange },
  'handshake-rate': { kind: 'string', value: 'N', help: 'registration handshakes per source address per second; 0 = off', range: rateRange },
  'handshake-rate-global': { kind: 'string', value: 'N', help: 'registration handshakes per second, whole relay; 0 = off', range: rateRange },
  'stun-rate': { kind: 'string', value: 'N', help: 'STUN answers per source address per second; 0 = off', range: rateRange },
  'max-sources': { kind: 'string', value: 'N', help: 'source addresses with their own budgets\n(beyond: one shared budget)', range: entriesRange },
  'max-connections': { kind: 'string', value: 'N', help: 'open HTTP/WebSocket connections', range: entriesRange },
  'max-connections-per-source': { kind: 'string', value: 'N', help: 'open HTTP/WebSocket connections from one address', range: entriesRange },
  'headers-timeout': { kind: 'string', value: 'MS', help: 'ms for a request\'s headers (and a TLS handshake)', range: msRange },
  'idle-timeout': { kind: 'string', value: 'MS', help: 'ms an idle HTTP connection is kept', range: msRange },
  'ws-register-timeout': { kind: 'string', value: 'MS', help: 'ms a WebSocket may stay open without registering', range: msRange },
  workers: { kind: 'string', value: 'N', help: 'relay processes sharing the UDP and HTTP ports, one per core\n(the key table is replicated between them)', range: { min: 1, max: MAX_WORKERS } },
  'max-payload': { kind: 'string', value: 'BYTES', help: 'largest forwarded payload', range: { min: 1, max: DEFAULT_MAX_PAYLOAD } },
  'max-agents': { kind: 'string', value: 'N', help: 'most registered agents', range: entriesRange },
  keepalive: { kind: 'string', value: 'S', help: 'keepalive interval suggested to agents, seconds', range: { min: 1, max: 3600 } },
  expiry: { kind: 'string', value: 'S', help: 'registration lifetime without traffic, seconds\n(more than --keepalive)', range: { min: 2, max: 86_400 } },
  // the lobby's bounds are checked by lobby/relay-flags.ts (lobbyOptionFromFlags)
  lobbies: { kind: 'string', value: 'N', help: 'most open lobbies (mpyc-agent invite/join, on the HTTP port);\n0 turns lobbies off' },
  'lobbies-per-source': { kind: 'string', value: 'N', help: 'most open lobbies created from one address (IPv6: one /64)' },
  'lobby-parties': { kind: 'string', value: 'N', help: `most members of one lobby, 2..${LOBBY_MAX_PARTIES}` },
  'lobby-ttl': { kind: 'string', value: 'S', help: 'lifetime of a lobby in seconds' },
  'log-level': { kind: 'string', value: 'LEVEL', help: `${LOG_LEVELS.join('|')} (default info)` },
  'log-format': { kind: 'string', value: 'FORMAT', help: `${LOG_FORMATS.join('|')}: human lines on a terminal, JSON lines otherwise\n(default by whether stderr is a terminal); logs go to stderr` },
} as const;
export type ServeOptions = typeof SERVE_OPTIONS;
export type ServeOptionName = keyof ServeOptions & string;

/** what SIGHUP applies at once; a change to any other option is logged as needing a restart */
export const RELOADABLE: readonly ServeOptionName[] = ['allow', 'log-level', 'log-format'];

export const SERVE_COMMAND_LINE = { ...SERVE_OPTIONS, config: { kind: 'string', value: 'FILE' }, check: { kind: 'boolean' } } as const;

const COLUMN = 23;

/** help texts are wrapped by hand; a default that would make a line too long gets its own */
const WIDTH = 88;

function optionLine(flag: string, text: string, suffix = ''): string {
  const help = suffix && COLUMN + (text.split('\n').pop()!.length + suffix.length) > WIDTH ? `${text}\n${suffix.trim()}` : text + suffix;
  const [first, ...more] = help.split('\n');
  const head = `  ${flag}`;
  const lines = head.length < COLUMN - 1 ? [`${head.padEnd(COLUMN)}${first}`] : [head, `${' '.repeat(COLUMN)}${first}`];
  return [...lines, ...more.map((l) => `${' '.repeat(COLUMN)}${l}`)].join('\n');
}

function defaultOf(name: ServeOptionName): string {
  return name in SERVE_DEFAULTS ? ` (default ${SERVE_DEFAULTS[name as keyof typeof SERVE_DEFAULTS]})` : '';
}

export const SERVE_USAGE = 'mpyc-relay serve --key FILE [options]';

export const SERVE_OPTIONS_HELP = `${Object.entries(SERVE_OPTIONS).map(([name, o]) => optionLine(`--${name} ${o.value}`, o.help, defaultOf(name as ServeOptionName))).join('\n')}
${optionLine('--config FILE', 'read options from a JSON file:\n{"key": "relay.key", "udp": "0.0.0.0:3478"}')}
${optionLine('--check', 'check the key, the files and every option, print the settings\nand where each came from, and exit')}
${optionLine('-h, --help', 'this text')}

Every option can also be set by the environment, MPYC_RELAY_ and the option's name in
capitals with '_' for '-' (MPYC_RELAY_UDP=0.0.0.0:3478), or by the config file
(MPYC_RELAY_CONFIG=FILE or --config FILE; JSON, keys as the long options without
'--', numbers as numbers or strings).
Precedence: flags > environment > config file > defaults.
SIGHUP re-reads the config file and the allow-list: ${RELOADABLE.map((k) => `--${k}`).join(', ')}
change at once (in every worker); other changes are logged and take effect after a restart.
`;

export const SERVE_HELP = `Usage: ${SERVE_USAGE}

Runs the relay in the foreground until SIGTERM/SIGINT (agents are then told it is
restarting).

Options:
${SERVE_OPTIONS_HELP}
On start the relay logs one line "listening" (JSON: {"msg":"listening",...}) with the
ports actually bound (use port 0 for ephemeral ports) and the address string for session files:
  KEY@host:udpPort/httpPort
Every limit, its default and the reason for it: docs/relay.md.

${EXIT_CODES_HELP}`;
