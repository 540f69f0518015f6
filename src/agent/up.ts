// `mpyc-agent up [SESSION] [options]`: the party daemon in the foreground (systemd-friendly:
// logs to stderr, the MPyC command line to stdout, exits 0 on SIGTERM/SIGINT, SIGHUP
// reloads the config file). Options come from flags, MPYC_AGENT_* variables and a config
// file (src/common/config.ts); every value is checked here, and an error names where the
// value came from. The agent itself (with ws and prom-client) loads only once the settings
// are valid, so `up --help` and mistakes answer at once.
import { isIP } from 'node:net';
import { EXIT, EXIT_CODES_HELP, UsageError, expectPositionals, parseCommandLine, type OptionValues } from '../common/cli.js';
import { loadConfig, type Config } from '../common/config.js';
import { LOG_FORMATS, LOG_LEVELS, createLogger, defaultLogFormat, parseLogFormat, parseLogLevel, type LogFormat, type LogLevel } from '../common/log.js';
import { readKeyFile } from '../common/keys.js';
import { PeerKey } from '../common/peer-key.js';
import { findOwnIndex, loadSessionFile } from './session-file.js';
import { controlSocketPath, defaultControlDir, ensureControlDir, startControlServer, type ControlServer } from './control.js';
import type { MetricsEndpoint } from './metrics-http.js';
import { DEFAULT_KEY_FILE, USAGE } from './usage.js';
import type { AgentKeyPair, GenericForward, RelayTransportChoice } from './types.js';

const ENV_PREFIX = 'MPYC_AGENT';

/** every option that may also come from an MPYC_AGENT_* variable or the config file */
export const UP_OPTIONS = {
  session: { kind: 'string', value: 'FILE' },
  key: { kind: 'string', value: 'FILE' },
  'relay-only': { kind: 'boolean' },
  'relay-transport': { kind: 'string', value: 'MODE' },
  bind: { kind: 'string', value: 'HOST' },
  'udp-port': { kind: 'string', value: 'N' },
  'local-base': { kind: 'string', value: 'N' },
  listen: { kind: 'list', value: 'HOST' },
  forward: { kind: 'list', value: 'L:PARTY:R' },
  'allow-port': { kind: 'list', value: 'N' },
  control: { kind: 'string', value: 'PATH' },
  metrics: { kind: 'string', value: 'HOST:PORT' },
  'log-level': { kind: 'string', value: 'LEVEL' },
  'log-format': { kind: 'string', value: 'FORMAT' },
} as const;
type UpOptions = typeof UP_OPTIONS;

/** what SIGHUP applies at once; a change to any other option is logged as needing a restart */
export const RELOADABLE: readonly string[] = ['log-level', 'log-format'];

const COMMAND_LINE = { ...UP_OPTIONS, config: { kind: 'string', value: 'FILE' }, check: { kind: 'boolean' } } as const;

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
  --relay-transport MODE  auto (UDP, falling back to WebSocket; default), udp, or ws
  --bind HOST             local IPv4 address of the agent's UDP socket (default 0.0.0.0)
  --udp-port N            UDP port (default 0 = any free port)
  --local-base N          base of this agent's loopback listeners and of the local MPyC
                          listener it delivers to (default: basePort of the session file).
                          Use a different one per party when several parties share a machine;
                          MPyC is then run with -B N.
  --listen HOST           listener address; repeatable (default 127.0.0.1 and ::1)
  --forward L:PARTY:R     generic mode: carry local port L to port R on party PARTY's host;
                          repeatable. R must be allowed there with --allow-port R.
  --allow-port N          let peers reach 127.0.0.1:N on this host (generic mode); repeatable
  --control PATH          control socket for \`mpyc-agent status\`
                          (default ${defaultControlDir()}/agent-<hash of public key>.sock)
  --metrics HOST:PORT     serve http://HOST:PORT/metrics (Prometheus) and /healthz (off by default)
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
  relayTransport: RelayTransportChoice;
  bind: string;
  udpPort: number;
  localBase?: number;
  listen?: string[];
  forwards: GenericForward[];
  allowedPorts: number[];
  control?: string;
  metrics?: { host: string; port: number };
  logLevel: LogLevel;
  logFormat: LogFormat;
}

function intIn(text: string, origin: string, min: number, max: number): number {
  if (!/^\d{1,6}$/.test(text) || Number(text) < min || Number(text) > max) throw new UsageError(`${origin}: must be an integer in ${min}..${max}, got ${JSON.stringify(text)}`);
  return Number(text);
}

function parseForward(text: string, origin: string): GenericForward {
  const m = /^(\d{1,5}):(\d{1,4}):(\d{1,5})$/.exec(text);
  if (!m) throw new UsageError(`${origin}: wants LOCALPORT:PARTY:REMOTEPORT, got ${JSON.stringify(text)}`);
  const [localPort, peerIndex, remotePort] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (localPort < 1 || localPort > 65535 || remotePort < 1 || remotePort > 65535) throw new UsageError(`${origin}: ${text}: ports must be 1..65535`);
  return { localPort, peerIndex, remotePort };
}

function parseHostPort(text: string, origin: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(text) ?? /^([^:[\]]+):(\d{1,5})$/.exec(text);
  if (!m || Number(m[2]) > 65535) throw new UsageError(`${origin}: wants HOST:PORT (IPv6 as [ADDR]:PORT), got ${JSON.stringify(text)}`);
  return { host: m[1]!, port: Number(m[2]) };
}

/** Checks every value of a config and turns it into settings; errors name the value's origin. */
export function settingsFrom(c: Config<UpOptions>): UpSettings {
  const sessionPath = c.get('session');
  if (sessionPath === undefined) throw new UsageError('missing SESSION (the session file: mpyc-agent up SESSION, or "session" in the config file)');
  const level = c.get('log-level') ?? 'info';
  const logLevel = parseLogLevel(level);
  if (!logLevel) throw new UsageError(`${c.origin('log-level')}: unknown level ${JSON.stringify(level)} (${LOG_LEVELS.join(', ')})`);
  const format = c.get('log-format');
  const logFormat = format === undefined ? defaultLogFormat() : parseLogFormat(format);
  if (!logFormat) throw new UsageError(`${c.origin('log-format')}: unknown format ${JSON.stringify(format)} (${LOG_FORMATS.join(', ')})`);
  const transport = c.get('relay-transport') ?? 'auto';
  if (!['auto', 'udp', 'ws'].includes(transport)) throw new UsageError(`${c.origin('relay-transport')}: must be auto, udp or ws, got ${JSON.stringify(transport)}`);
  const bind = c.get('bind') ?? '0.0.0.0';
  if (isIP(bind) !== 4) throw new UsageError(`${c.origin('bind')}: wants an IPv4 address, got ${JSON.stringify(bind)}`);
  const udpPort = c.get('udp-port');
  const localBase = c.get('local-base');
  const metrics = c.get('metrics');
  const listen = c.get('listen');
  for (const h of listen ?? []) if (isIP(h) === 0) throw new UsageError(`${c.origin('listen')}: wants IP addresses, got ${JSON.stringify(h)}`);
  return {
    sessionPath,
    keyPath: c.get('key') ?? DEFAULT_KEY_FILE,
    relayOnly: c.get('relay-only') ?? false,
    relayTransport: transport as RelayTransportChoice,
    bind,
    udpPort: udpPort === undefined ? 0 : intIn(udpPort, c.origin('udp-port'), 0, 65535),
    ...(localBase !== undefined ? { localBase: intIn(localBase, c.origin('local-base'), 1, 65535) } : {}),
    ...(listen !== undefined && listen.length > 0 ? { listen } : {}),
    forwards: (c.get('forward') ?? []).map((f) => parseForward(f, c.origin('forward'))),
    allowedPorts: (c.get('allow-port') ?? []).map((p) => intIn(p, c.origin('allow-port'), 1, 65535)),
    ...(c.get('control') !== undefined ? { control: c.get('control') } : {}),
    ...(metrics !== undefined ? { metrics: parseHostPort(metrics, c.origin('metrics')) } : {}),
    logLevel,
    logFormat,
  };
}

/** The settings, this party and its key, checked against each other; nothing is started yet. */
interface Prepared {
  settings: UpSettings;
  keyPair: AgentKeyPair;
  ownKey: PeerKey;
  ownIndex: number;
  session: ReturnType<typeof loadSessionFile>;
  localBase: number;
}

function prepare(settings: UpSettings, c: Config<UpOptions>): Prepared {
  const keyPair = readKeyFile(settings.keyPath, { keygenCommand: 'mpyc-agent keygen' });
  const ownKey = PeerKey.fromBytes(keyPair.publicKey);
  const session = loadSessionFile(settings.sessionPath);
  const ownIndex = findOwnIndex(session, ownKey.text, settings.sessionPath);
  const m = session.parties.length;
  const localBase = settings.localBase ?? session.basePort;
  if (localBase + m - 1 > 65535) throw new UsageError(`${c.origin('local-base')}: ${localBase} + ${m} parties - 1 exceeds 65535`);
  for (const f of settings.forwards) {
    const text = `${f.localPort}:${f.peerIndex}:${f.remotePort}`;
    if (f.peerIndex >= m || f.peerIndex === ownIndex) throw new UsageError(`${c.origin('forward')}: ${text}: party ${f.peerIndex} is not another party of this ${m}-party session`);
    if (f.localPort >= localBase && f.localPort < localBase + m) throw new UsageError(`${c.origin('forward')}: ${text}: collides with MPyC's ports ${localBase}..${localBase + m - 1}`);
  }
  return { settings, keyPair, ownKey, ownIndex, session, localBase };
}

function checkReport(p: Prepared, c: Config<UpOptions>): string {
  const lines = [`mpyc-agent up: settings are valid; party ${p.ownIndex} of ${p.session.parties.length}, key ${p.ownKey.text}`];
  if (c.filePath !== undefined) lines.push(`config file: ${c.filePath}`);
  const shown: Record<string, unknown> = { ...p.settings, localBase: p.localBase };
  const width = Math.max(...Object.keys(shown).map((k) => k.length));
  const originOf: Record<string, keyof UpOptions> = {
    sessionPath: 'session', keyPath: 'key', relayOnly: 'relay-only', relayTransport: 'relay-transport', bind: 'bind', udpPort: 'udp-port',
    localBase: 'local-base', listen: 'listen', forwards: 'forward', allowedPorts: 'allow-port', control: 'control', metrics: 'metrics',
    logLevel: 'log-level', logFormat: 'log-format',
  };
  for (const [k, v] of Object.entries(shown)) {
    const key = originOf[k];
    lines.push(`  ${k.padEnd(width)}  ${JSON.stringify(v)}  (${key ? c.origin(key) : 'default'})`);
  }
  return lines.join('\n') + '\n';
}

export async function runUp(argv: string[]): Promise<number> {
  const { help, values, positionals } = parseCommandLine(argv, COMMAND_LINE);
  if (help) { process.stdout.write(UP_HELP); return EXIT.OK; }
  expectPositionals(positionals, 0, 1, 'one SESSION file');
  if (positionals.length === 1 && values.session !== undefined) throw new UsageError('give the session file once: SESSION or --session FILE');
  const { config: configFlag, check, ...optionValues } = values;
  const flags: OptionValues<UpOptions> = { ...optionValues, ...(positionals[0] !== undefined ? { session: positionals[0] } : {}) };
  const load = (): Config<UpOptions> => loadConfig(UP_OPTIONS, { flags, env: process.env, envPrefix: ENV_PREFIX, ...(configFlag !== undefined ? { configFlag } : {}) });
  const config = load();
  const prepared = prepare(settingsFrom(config), config);
  if (check) {
    prepared.keyPair.privateKey.fill(0);
    process.stdout.write(checkReport(prepared, config));
    return EXIT.OK;
  }
  await runDaemon(prepared, config, load);
  return EXIT.OK;
}

async function runDaemon(p: Prepared, startConfig: Config<UpOptions>, reloadConfig: () => Config<UpOptions>): Promise<void> {
  const [{ Agent }, { startMetricsEndpoint }] = await Promise.all([import('./agent.js'), import('./metrics-http.js')]);
  const { settings } = p;
  const log = createLogger({ service: 'mpyc-agent', level: settings.logLevel, format: settings.logFormat, bindings: { party: p.ownIndex } });
  const logger = log.logger;
  const agent = new Agent({
    keyPair: p.keyPair, ownIndex: p.ownIndex, parties: p.session.parties, relays: p.session.relays, basePort: p.session.basePort,
    localBase: p.localBase, relayOnly: settings.relayOnly, relayTransport: settings.relayTransport,
    udpBind: { host: settings.bind, port: settings.udpPort }, allowedPorts: settings.allowedPorts, forwards: settings.forwards,
    listenHosts: settings.listen, logger,
  });
  let controlPath = settings.control;
  if (!controlPath) {
    const dir = defaultControlDir();
    ensureControlDir(dir);
    controlPath = controlSocketPath(p.ownKey.text, dir);
  }
  let control: ControlServer | undefined;
  let endpoint: MetricsEndpoint | undefined;
  let current = startConfig;
  const reload = (): void => {
    let next: Config<UpOptions>;
    let nextSettings: UpSettings;
    try {
      next = reloadConfig();
      nextSettings = settingsFrom(next);
    } catch (e) {
      logger.error({ err: (e as Error).message }, 'config reload failed; keeping the current settings');
      return;
    }
    const applied = current.changedKeys(next).filter((k) => RELOADABLE.includes(k));
    if (applied.includes('log-level')) log.setLevel(nextSettings.logLevel);
    if (applied.includes('log-format')) log.setFormat(nextSettings.logFormat);
    // compared with what runs (the start), so every reload repeats what still waits for a restart
    const needRestart = startConfig.changedKeys(next).filter((k) => !RELOADABLE.includes(k));
    if (needRestart.length > 0) logger.warn({ options: needRestart }, 'config changed; these options take effect after a restart');
    logger.info({ config: next.filePath ?? null, applied, level: nextSettings.logLevel, format: nextSettings.logFormat }, 'config reloaded');
    current = next;
  };

  // Signals have their handlers before anything starts: a signal without one would kill the
  // process at once (SIGHUP's default), whatever state it is in.
  let phase: 'starting' | 'running' | 'stopping' = 'starting';
  let stopRequested: string | undefined;
  let finished = (): void => undefined;
  const stopped = new Promise<void>((resolve) => { finished = resolve; });
  const stop = (sig: string): void => {
    if (phase === 'stopping' || (phase === 'starting' && stopRequested !== undefined)) {
      // a second signal: the operator does not want to wait for a clean stop
      logger.warn({ signal: sig }, 'second signal; exiting now');
      process.exit(EXIT.FAILURE);
    }
    if (phase === 'starting') { stopRequested = sig; logger.info({ signal: sig }, 'stop requested while starting; stopping once started'); return; }
    phase = 'stopping';
    logger.info({ signal: sig }, 'stopping');
    endpoint?.markStopping();
    void Promise.all([agent.stop(), control?.close()]).then(() => endpoint?.close()).then(() => {
      // stopped: a handle left open somewhere must not keep the process (and systemd) waiting
      setTimeout(() => {
        logger.warn('handles still open a second after stopping; exiting anyway');
        process.exit(EXIT.OK);
      }, 1000).unref();
      finished();
    });
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGHUP', () => {
    // On a terminal SIGHUP means the terminal went away: stop instead of living on detached.
    // Elsewhere (systemd's ExecReload, kill -HUP) it asks for a reload.
    if (process.stderr.isTTY) stop('SIGHUP');
    else if (phase === 'running') reload();
    else logger.info({ phase }, 'SIGHUP ignored: the settings in use were read at start');
  });

  try {
    await agent.start();
    control = await startControlServer(controlPath, { status: () => agent.status(), metrics: () => agent.metrics() });
    if (settings.metrics) {
      const { host, port } = settings.metrics;
      endpoint = await startMetricsEndpoint(host, port, agent);
      if (!/^(127\.|::1$|localhost$)/.test(host)) logger.warn({ metrics: `${host}:${endpoint.port}` }, 'metrics endpoint is reachable from other hosts; it shows peers and traffic');
    }
  } catch (err) {
    await Promise.all([agent.stop(), control?.close()]);
    throw err;
  }
  phase = 'running';
  const cmd = agent.status().mpycCommand;
  process.stdout.write(`mpyc-agent: party ${p.ownIndex} of ${p.session.parties.length}; run MPyC as:\n  ${cmd}\n`);
  logger.info({ mpycCommand: cmd, control: controlPath, ...(startConfig.filePath !== undefined ? { config: startConfig.filePath } : {}) }, 'ready');
  if (stopRequested !== undefined) stop(stopRequested);
  await stopped;
}
