// What `mpyc-agent up` can be told and how each value is checked: the options (flags,
// MPYC_AGENT_* variables and config file keys share these names), its --help text, and
// settingsFrom, which turns a Config into checked settings; every error names where the
// bad value came from (a flag, a variable, or file:line:column: key).
import { isIP } from 'node:net';
import { EXIT_CODES_HELP, UsageError, hostPortIn, integerIn, secondsIn } from '../common/cli.js';
import type { Config } from '../common/config.js';
import { LOG_LEVELS, logSettingsIn, type LogFormat, type LogLevel } from '../common/log.js';
import { defaultControlDir } from './control.js';
import { DEFAULT_OFFLINE_AFTER_MS, DEFAULT_OFFLINE_CLOSE_MS } from './peer-link.js';
import { DEFAULT_KEY_FILE, USAGE } from './usage.js';
import type { GenericForward, RelayTransportChoice } from './types.js';

export const ENV_PREFIX = 'MPYC_AGENT';

/** --stop-grace: systemd waits 90 s (TimeoutStopSec) before it kills; a stop must end well inside that.
 *  The default is the core's (agent.ts DEFAULT_STOP_GRACE_MS). */
export const STOP_GRACE_S = { min: 0, max: 30, default: 0.5 } as const;
/** --peer-offline: an idle peer is heard every 5 s (the transport's keepalive), so under 10 s
 *  one lost keepalive would show a healthy peer offline; past an hour the stream connection
 *  is declared dead anyway (its idle timeout) */
export const PEER_OFFLINE_S = { min: 10, max: 3600, default: DEFAULT_OFFLINE_AFTER_MS / 1000 } as const;
/** --offline-close: 0 closes as soon as the peer is offline; past an hour the connection is dead anyway */
export const OFFLINE_CLOSE_S = { min: 0, max: 3600, default: DEFAULT_OFFLINE_CLOSE_MS / 1000 } as const;

/** every option that may also come from an MPYC_AGENT_* variable or the config file */
export const UP_OPTIONS = {
  session: { kind: 'string', value: 'FILE' },
  key: { kind: 'string', value: 'FILE' },
  'relay-only': { kind: 'boolean' },
  portmap: { kind: 'boolean' },
  'relay-transport': { kind: 'string', value: 'MODE' },
  bind: { kind: 'string', value: 'HOST' },
  bind6: { kind: 'string', value: 'HOST' },
  'udp-port': { kind: 'string', value: 'N' },
  'local-base': { kind: 'string', value: 'N' },
  listen: { kind: 'list', value: 'HOST' },
  forward: { kind: 'list', value: 'L:PARTY:R' },
  'allow-port': { kind: 'list', value: 'N' },
  control: { kind: 'string', value: 'PATH' },
  metrics: { kind: 'string', value: 'HOST:PORT' },
  'stop-grace': { kind: 'string', value: 'SECONDS' },
  'peer-offline': { kind: 'string', value: 'SECONDS' },
  'offline-close': { kind: 'string', value: 'SECONDS' },
  'log-level': { kind: 'string', value: 'LEVEL' },
  'log-format': { kind: 'string', value: 'FORMAT' },
} as const;
export type UpOptions = typeof UP_OPTIONS;

/** what SIGHUP applies at once; a change to any other option is logged as needing a restart */
export const RELOADABLE: readonly string[] = ['log-level', 'log-format'];

export const COMMAND_LINE = { ...UP_OPTIONS, config: { kind: 'string', value: 'FILE' }, check: { kind: 'boolean' } } as const;

export const UP_HELP = `${USAGE.up}

Runs this party's agent in the foreground until SIGINT/SIGTERM. Finds this party's index
in the session file by its public key, registers with the relay, reaches every other
party (directly when possible, else through the relay) and listens on loopback at
base+j for every other party j, exactly where MPyC connects. Prints the MPyC command
line to run (stdout); logs to stderr.

Options:
  SESSION, --session FILE the session file (mpyc-agent session create)
  --key FILE              private key file (default ./${DEFAULT_KEY_FILE}; create it with
                          mpyc-agent keygen --out FILE)
  --relay-only            never reveal this host's addresses to the other parties:
                          no candidates, no probes, all traffic through the relay
  --no-portmap            do not ask the router for a port mapping. By default the agent
                          asks the router on the default gateway (PCP, then NAT-PMP),
                          else a UPnP-IGD router of the LAN, to forward a public UDP port
                          to its socket, and offers that address to the other parties: a
                          way in through a NAT that would otherwise admit nothing. Renewed
                          while the agent runs, deleted when it stops. Never asked with
                          --relay-only or when every relay is on this host
  --relay-transport MODE  auto (UDP, falling back to WebSocket; default), udp, or ws
  --bind HOST             local IPv4 address of the agent's UDP socket (default 0.0.0.0)
  --bind6 HOST            local IPv6 address of its second UDP socket, or none (default ::
                          when --bind is 0.0.0.0, else none); it takes the IPv4 port if free
  --udp-port N            UDP port (default 0 = any free port)
  --local-base N          base of this agent's loopback listeners and of the local MPyC
                          listener it delivers to (default: basePort of the session file).
                          Use a different one per party when several parties share a machine;
                          MPyC is then run with -B N.
  --listen HOST           loopback address of the listeners; repeatable (default 127.0.0.1 and ::1)
  --forward L:PARTY:R     generic mode: carry local port L to port R on party PARTY's host;
                          repeatable. R must be allowed there with --allow-port R.
  --allow-port N          let peers reach 127.0.0.1:N on this host (generic mode); repeatable
  --control PATH          control socket for \`mpyc-agent status\`
                          (default ${defaultControlDir()}/agent-<hash of public key>.sock)
  --metrics HOST:PORT     serve http://HOST:PORT/metrics (Prometheus) and /healthz (off by default)
  --stop-grace SECONDS    on SIGTERM/SIGINT let data in flight drain this long before every
                          socket is closed, ${STOP_GRACE_S.min}..${STOP_GRACE_S.max} (default ${STOP_GRACE_S.default}); the agent exits
                          within about this + 1 s
  --peer-offline SECONDS  a connected peer silent this long is shown offline and logged,
                          ${PEER_OFFLINE_S.min}..${PEER_OFFLINE_S.max} (default ${PEER_OFFLINE_S.default}; a healthy idle peer is heard every 5 s)
  --offline-close SECONDS close the local MPyC connections to a peer offline this long, so
                          MPyC fails at once instead of at its own timeout, ${OFFLINE_CLOSE_S.min}..${OFFLINE_CLOSE_S.max}
                          (default ${OFFLINE_CLOSE_S.default})
  --log-level LEVEL       ${LOG_LEVELS.join(', ')} (default info)
  --log-format FORMAT     human (a terminal's default) or json (the default anywhere else)
  --config FILE           read options from a JSON file: {"key": "party.key", "log-level": "debug"}
  --no-OPTION             turn off a switch set by the environment or the config file
  --check                 check the key, the session file and every option, print the
                          settings and where each came from, and exit
  -h, --help              this text

Every option can also be set by the environment, MPYC_AGENT_ and the option's name in
capitals with '_' for '-' (MPYC_AGENT_LOG_LEVEL=debug; lists comma-separated; switches
1/0), or by the config file (MPYC_AGENT_CONFIG=FILE or --config FILE; JSON, keys as the
long options without '--'). Precedence: flags > environment > config file > defaults.
SIGHUP re-reads the config file: ${RELOADABLE.join(' and ')} change at once; other changes are
logged and take effect after a restart.

${EXIT_CODES_HELP}`;

export interface UpSettings {
  sessionPath: string;
  keyPath: string;
  relayOnly: boolean;
  /** ask the router for a port mapping (AgentConfig.portMapping) */
  portMapping: boolean;
  relayTransport: RelayTransportChoice;
  bind: string;
  /** the IPv6 socket's address; null: none; absent: the core's choice (:: when bind is 0.0.0.0) */
  bind6?: string | null;
  udpPort: number;
  localBase?: number;
  listen?: string[];
  forwards: GenericForward[];
  allowedPorts: number[];
  control?: string;
  metrics?: { host: string; port: number };
  stopGraceMs: number;
  peerOfflineMs: number;
  offlineCloseMs: number;
  logLevel: LogLevel;
  logFormat: LogFormat;
}

function isLoopback(host: string): boolean {
  return (isIP(host) === 4 && host.startsWith('127.')) || host === '::1';
}


function parseForward(text: string, origin: string): GenericForward {
  const m = /^(\d{1,5}):(\d{1,4}):(\d{1,5})$/.exec(text);
  if (!m) throw new UsageError(`${origin}: wants LOCALPORT:PARTY:REMOTEPORT, got ${JSON.stringify(text)}`);
  const [localPort, peerIndex, remotePort] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (localPort < 1 || localPort > 65535 || remotePort < 1 || remotePort > 65535) throw new UsageError(`${origin}: ${text}: ports must be 1..65535`);
  return { localPort, peerIndex, remotePort };
}


function seconds(c: Config<UpOptions>, key: 'stop-grace' | 'peer-offline' | 'offline-close', range: { min: number; max: number; default: number }): number {
  const text = c.get(key);
  return text === undefined ? range.default * 1000 : secondsIn(text, c.origin(key), range.min, range.max);
}

/** Checks every value of a config and turns it into settings; errors name the value's origin. */
export function settingsFrom(c: Config<UpOptions>): UpSettings {
  const sessionPath = c.get('session');
  if (sessionPath === undefined) throw new UsageError('missing SESSION (the session file: mpyc-agent up SESSION, or "session" in the config file)');
  const { logLevel, logFormat } = logSettingsIn(c.get('log-level'), c.get('log-format'), (k) => c.origin(k));
  const transport = c.get('relay-transport') ?? 'auto';
  if (!['auto', 'udp', 'ws'].includes(transport)) throw new UsageError(`${c.origin('relay-transport')}: must be auto, udp or ws, got ${JSON.stringify(transport)}`);
  const bind = c.get('bind') ?? '0.0.0.0';
  if (isIP(bind) !== 4) throw new UsageError(`${c.origin('bind')}: wants an IPv4 address, got ${JSON.stringify(bind)}`);
  const bind6 = c.get('bind6');
  if (bind6 !== undefined && bind6 !== 'none' && isIP(bind6) !== 6) throw new UsageError(`${c.origin('bind6')}: wants an IPv6 address or none, got ${JSON.stringify(bind6)}`);
  const udpPort = c.get('udp-port');
  const localBase = c.get('local-base');
  const metrics = c.get('metrics');
  const listen = c.get('listen');
  for (const h of listen ?? []) {
    if (!isLoopback(h)) throw new UsageError(`${c.origin('listen')}: wants a loopback address (127.x.x.x or ::1), got ${JSON.stringify(h)}: the listeners carry MPyC's connections into the session, so other hosts must not reach them`);
  }
  return {
    sessionPath,
    keyPath: c.get('key') ?? DEFAULT_KEY_FILE,
    relayOnly: c.get('relay-only') ?? false,
    portMapping: c.get('portmap') ?? true,
    relayTransport: transport as RelayTransportChoice,
    bind,
    ...(bind6 !== undefined ? { bind6: bind6 === 'none' ? null : bind6 } : {}),
    udpPort: udpPort === undefined ? 0 : integerIn(udpPort, c.origin('udp-port'), 0, 65535),
    ...(localBase !== undefined ? { localBase: integerIn(localBase, c.origin('local-base'), 1, 65535) } : {}),
    ...(listen !== undefined && listen.length > 0 ? { listen } : {}),
    forwards: (c.get('forward') ?? []).map((f) => parseForward(f, c.origin('forward'))),
    allowedPorts: (c.get('allow-port') ?? []).map((p) => integerIn(p, c.origin('allow-port'), 1, 65535)),
    ...(c.get('control') !== undefined ? { control: c.get('control') } : {}),
    ...(metrics !== undefined ? { metrics: hostPortIn(metrics, c.origin('metrics')) } : {}),
    stopGraceMs: seconds(c, 'stop-grace', STOP_GRACE_S),
    peerOfflineMs: seconds(c, 'peer-offline', PEER_OFFLINE_S),
    offlineCloseMs: seconds(c, 'offline-close', OFFLINE_CLOSE_S),
    logLevel,
    logFormat,
  };
}
