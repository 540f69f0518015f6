#!/usr/bin/env node
// mpyc-relay: STUN + authenticated relay for mpyc-agent. See docs/relay.md.
import cluster from 'node:cluster';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import { EXIT, EXIT_CODES_HELP, UsageError, exitCodeOf, expectPositionals, parseCommandLine } from '../common/cli.js';
import { loadConfig, type Config } from '../common/config.js';
import { createLogger, defaultLogFormat, LOG_FORMATS, LOG_LEVELS, type DaemonLogger } from '../common/log.js';
import { PeerKey } from '../common/peer-key.js';
import { LOBBY_CLI_HELP } from '../lobby/relay-flags.js';
import { DEFAULT_LIMITS } from './limit-defaults.js';
import type { RelayServer } from './server.js';
import {
  ENV_PREFIX, LIMIT_FLAGS, RELOADABLE, SERVE_COMMAND_LINE, SERVE_OPTIONS, loadAllowList, settingsFrom,
  type ServeOptions, type ServeSettings,
} from './serve-settings.js';

const HELP = `mpyc-relay — STUN server and authenticated packet relay for mpyc-agent

Usage:
  mpyc-relay keygen [--out FILE] [--force]
      Create a relay key. With --out, writes the private key to FILE (mode 0600,
      refuses to overwrite unless --force) and prints the public key. Without --out,
      prints the private key on stdout.
  mpyc-relay pubkey --key FILE
      Print the public key of a key file.
  mpyc-relay serve --key FILE [options]
      Run the relay.

serve options:
  --key FILE           relay private key file (from keygen; must be mode 0600)
  --udp HOST:PORT      UDP address for STUN and relay frames (default 0.0.0.0:3478)
  --stun-alt-port N    a second UDP port on the --udp host that answers STUN only; both
                       name each other in RFC 5780 OTHER-ADDRESS, so one relay lets an
                       agent tell an endpoint-independent NAT mapping from a symmetric one
                       (usually the UDP port + 1; default 0 = off)
  --http HOST:PORT     HTTP address for the WebSocket endpoint /relay, /metrics and
                       /healthz (default 0.0.0.0:8080); "off" disables HTTP
  --tls-cert FILE      PEM certificate chain: the HTTP port speaks https and wss
  --tls-key FILE       PEM private key of that certificate (both or neither)
  --public-host HOST   the name or address agents reach this relay at: goes into the
                       printed relay address. Needed when listening on a wildcard
                       address (0.0.0.0, ::); otherwise the --udp host is used
  --allow FILE         allow-list: one base64 agent public key per line, '#' comments;
                       without it any agent key may register. Reloaded on SIGHUP.
  --rate PPS           per-agent forwarding limit in packets per second (default ${DEFAULT_LIMITS.ratePps})
  --burst N            per-agent burst in packets (default rate/2)
${LIMIT_FLAGS.map(([f, o, h]) => `  --${f} N\n${' '.repeat(23)}${h} (default ${DEFAULT_LIMITS[o as keyof typeof DEFAULT_LIMITS]})`).join('\n')}
  --workers N          relay processes sharing the UDP and HTTP ports, one per core
                       (default 1; the key table is replicated between them)
  --max-payload BYTES  largest forwarded payload (default 1400)
  --max-agents N       most registered agents (default 100000)
  --keepalive S        keepalive interval suggested to agents (default 10)
  --expiry S           registration lifetime without traffic (default 35)
${LOBBY_CLI_HELP}  --log-level LEVEL    ${LOG_LEVELS.join('|')} (default info)
  --log-format F       ${LOG_FORMATS.join('|')}: human lines on a terminal, JSON lines otherwise
                       (default by whether stderr is a terminal); logs go to stderr
  --config FILE        a JSON file of these options ({"udp": "0.0.0.0:3478", "rate": 50000});
                       also MPYC_RELAY_CONFIG. Every option can be set as a flag, as
                       MPYC_RELAY_<NAME> (e.g. MPYC_RELAY_LOG_LEVEL=debug) or in the file;
                       the first of flag, variable, file wins, then the default
  --check              check the key and every option, print the settings and where each
                       came from, and exit without listening
  -h, --help           this text

On start the relay logs one line "listening" (JSON: {"msg":"listening",...}) with the ports actually
bound (use port 0 for ephemeral ports) and the address string for session files:
  KEY@host:udpPort/httpPort
Every limit, its default and the reason for it: docs/relay.md.
SIGTERM/SIGINT: agents are told the relay is restarting, then it exits.
SIGHUP: the config is read again; the allow-list and the log level apply at once, other
changes after a restart (the relay logs which).

${EXIT_CODES_HELP}
`;

/** --public-host as IP addresses for OTHER-ADDRESS (a name is resolved once, at start); undefined: the --udp host. */
async function publicAddresses(host: string | undefined, log: Logger): Promise<string[] | undefined> {
  if (host === undefined) return undefined;
  const bare = host.replace(/^\[|\]$/g, '');
  if (isIP(bare)) return [bare];
  try {
    return (await lookup(bare, { all: true })).map((a) => a.address);
  } catch (err) {
    log.warn({ publicHost: host, err: (err as NodeJS.ErrnoException).code ?? String(err) }, '--public-host does not resolve: STUN answers carry no OTHER-ADDRESS');
    return [];
  }
}

const isWildcard = (host: string): boolean => host === '0.0.0.0' || host === '::' || host === '[::]';

/** --check: every setting and where it came from (the key file was read: it is usable). */
function checkReport(s: ServeSettings, c: Config<ServeOptions>, publicKey: string): string {
  const lines = [`mpyc-relay serve: settings are valid; relay key ${publicKey}`];
  if (c.filePath !== undefined) lines.push(`config file: ${c.filePath}`);
  const keys = Object.keys(SERVE_OPTIONS) as (keyof ServeOptions & string)[];
  const width = Math.max(...keys.map((k) => k.length));
  for (const k of keys) {
    const v = c.get(k);
    lines.push(`  ${k.padEnd(width)}  ${v === undefined ? '(default)' : JSON.stringify(v)}  (${c.origin(k)})`);
  }
  lines.push(`  effective: udp ${s.udp.host}:${s.udp.port}, http ${s.http ? `${s.http.host}:${s.http.port}${s.tls ? ' (TLS)' : ''}` : 'off'}, stun-alt-port ${s.stunAltPort || 'off'}, workers ${s.workers}, log-level ${s.logLevel}`);
  return lines.join('\n') + '\n';
}

async function serve(argv: string[]): Promise<void> {
  const { help, values, positionals } = parseCommandLine(argv, SERVE_COMMAND_LINE);
  if (help) { process.stdout.write(HELP); return; }
  expectPositionals(positionals, 0, 0, 'options');
  const { config: configFlag, check, ...flags } = values;
  const load = (): Config<ServeOptions> => loadConfig(SERVE_OPTIONS, { flags, env: process.env, envPrefix: ENV_PREFIX, ...(configFlag !== undefined ? { configFlag } : {}) });
  const config = load();
  const s = settingsFrom(config);
  const [{ readKeyFile }, { RelayServer }, { runPrimary, workerLink }, { newCookieSecret }, { relayWsUrl }] = await Promise.all([
    import('../common/keys.js'), import('./server.js'), import('./cluster.js'), import('./cookie.js'), import('./client.js'),
  ]);
  const keyPair = readKeyFile(s.keyPath);
  const allow = s.allowPath ? loadAllowListOrUsage(s.allowPath, config) : undefined;
  if (check) {
    const text = checkReport(s, config, PeerKey.fromBytes(keyPair.publicKey).text);
    keyPair.privateKey.fill(0);
    process.stdout.write(text);
    return;
  }
  const daemonLog = createLogger({ service: 'mpyc-relay', level: s.logLevel, format: s.logFormat ?? defaultLogFormat() });
  const log = daemonLog.logger;
  if (s.workers > 1 && cluster.isPrimary) {
    // every option was checked above; the workers run this same command line and environment
    runPrimary(s.workers, newCookieSecret(), (msg, o) => log.error(o ?? {}, msg));
    return;
  }
  const link = cluster.isWorker ? await workerLink() : undefined;
  const server = new RelayServer({
    keyPair, udp: s.udp, http: s.http, tls: s.tls, allow, logger: link ? log.child({ worker: link.workerId }) : log, ratePps: s.ratePps, ...s.limits, cluster: link,
    burst: s.burst, maxPayload: s.maxPayload, maxAgents: s.maxAgents, keepaliveS: s.keepaliveS, expiryS: s.expiryS, lobby: s.lobby,
    ...(s.stunAltPort !== 0 ? { stunAltPort: s.stunAltPort, publicAddresses: await publicAddresses(s.publicHost, log) } : {}),
  });
  let ports;
  try {
    ports = await server.start();
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const hint = e.code === 'EADDRINUSE' ? ' (port already in use)' : e.code === 'EACCES' ? ' (permission denied)' : '';
    throw new Error(`cannot listen: ${e.message}${hint}`);
  }
  const publicHost = s.publicHost ?? (isWildcard(s.udp.host) ? undefined : s.udp.host);
  const shown = publicHost === undefined ? undefined : publicHost.includes(':') && !publicHost.startsWith('[') ? `[${publicHost}]` : publicHost;
  const tail = `${ports.udpPort}${ports.httpPort !== undefined ? `/${ports.httpPort}` : ''}`;
  const relayAddress = shown === undefined ? null : `${server.publicKey}@${shown}:${tail}`;
  handleSignals(server, daemonLog, config, load);
  if (link && link.workerId !== 0) return;
  log.info({
    udp: `${s.udp.host}:${ports.udpPort}`, stunAltPort: ports.stunAltPort ?? null, workers: s.workers, http: s.http ? `${s.http.host}:${ports.httpPort}` : null,
    udpPort: ports.udpPort, httpPort: ports.httpPort ?? null, relayAddress,
    wsUrl: shown !== undefined && ports.httpPort !== undefined ? relayWsUrl(publicHost!, ports.httpPort, { tls: !!s.tls }) : null,
    tls: !!s.tls, allowList: allow ? allow.size : null, config: config.filePath ?? null,
  }, 'listening');
  if (relayAddress === null) {
    log.warn({ relayAddressTemplate: `${server.publicKey}@PUBLIC-HOST:${tail}` },
      `listening on the wildcard address ${s.udp.host}: pass --public-host with the name or address agents reach this relay at, and give them KEY@PUBLIC-HOST:${tail}`);
  }
}

/** At start a broken allow-list is a configuration error (exit 2) naming where its path was set. */
function loadAllowListOrUsage(path: string, c: Config<ServeOptions>): Set<string> {
  try { return loadAllowList(path); } catch (e) { throw new UsageError(`${c.origin('allow')}: ${(e as Error).message}`); }
}

function handleSignals(server: RelayServer, daemonLog: DaemonLogger, startConfig: Config<ServeOptions>, reloadConfig: () => Config<ServeOptions>): void {
  const log = daemonLog.logger;
  let stopping = false;
  const stop = (sig: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal: sig }, 'stopping: notifying agents');
    server.stop(true).then(() => process.exit(EXIT.OK), () => process.exit(EXIT.FAILURE));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // SIGHUP: read the config again (flags and environment as at start, the file anew); the
  // allow-list file is read again even when its path did not change (that is its reload)
  process.on('SIGHUP', () => {
    let next: Config<ServeOptions>;
    let s: ServeSettings;
    let allow: Set<string> | undefined;
    try {
      next = reloadConfig();
      s = settingsFrom(next);
      allow = s.allowPath ? loadAllowList(s.allowPath) : undefined;
    } catch (err) {
      log.error({ err: (err as Error).message }, 'config reload failed; keeping the current settings');
      return;
    }
    server.setAllowList(allow);
    daemonLog.setLevel(s.logLevel);
    const needRestart = startConfig.changedKeys(next).filter((k) => !RELOADABLE.includes(k));
    if (needRestart.length > 0) log.warn({ options: needRestart }, 'config changed; these options take effect after a restart');
    log.info({ config: next.filePath ?? null, allowList: allow ? allow.size : null, level: s.logLevel }, 'config reloaded');
  });
}

const KEYGEN_OPTIONS = { out: { kind: 'string', value: 'FILE' }, force: { kind: 'boolean' } } as const;
const PUBKEY_OPTIONS = { key: { kind: 'string', value: 'FILE' } } as const;

/** keygen: stdout carries only the key (scripts read it); the label goes to stderr. */
async function keygen(rest: string[]): Promise<void> {
  const { help, values, positionals } = parseCommandLine(rest, KEYGEN_OPTIONS);
  if (help) { process.stdout.write(HELP); return; }
  expectPositionals(positionals, 0, 0, 'options');
  const [{ writeKeyFile }, { generateKeyPair }] = await Promise.all([import('../common/keys.js'), import('../noise/index.js')]);
  if (values.out) {
    const kp = writeKeyFile(values.out, { force: values.force ?? false });
    process.stderr.write(`mpyc-relay: private key written to ${values.out} (mode 0600); the relay's public key:\n`);
    process.stdout.write(PeerKey.fromBytes(kp.publicKey).text + '\n');
    return;
  }
  const kp = generateKeyPair();
  process.stderr.write(`mpyc-relay: PRIVATE key below (keep it secret; save it in a mode 0600 file); its public key is ${PeerKey.fromBytes(kp.publicKey).text}\n`);
  process.stdout.write(Buffer.from(kp.privateKey).toString('base64') + '\n');
}

async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '-h' || cmd === '--help' || cmd === 'help') { process.stdout.write(HELP); return; }
  if (cmd === 'keygen') { await keygen(rest); return; }
  if (cmd === 'pubkey') {
    const { help, values, positionals } = parseCommandLine(rest, PUBKEY_OPTIONS);
    if (help) { process.stdout.write(HELP); return; }
    expectPositionals(positionals, 0, 0, 'options');
    if (!values.key) throw new UsageError('pubkey: --key FILE is required');
    const { readKeyFile } = await import('../common/keys.js');
    process.stdout.write(PeerKey.fromBytes(readKeyFile(values.key).publicKey).text + '\n');
    return;
  }
  if (cmd === 'serve') { await serve(rest); return; }
  throw new UsageError(`unknown command ${JSON.stringify(cmd)}; see mpyc-relay --help`);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  const msg = err instanceof Error ? err.message : String(err);
  process.stderr.write(`mpyc-relay: ${msg}\n`);
  if (err instanceof UsageError) process.stderr.write('Try: mpyc-relay --help\n');
  process.exit(exitCodeOf(err));
});
