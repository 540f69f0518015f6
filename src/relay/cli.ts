#!/usr/bin/env node
// mpyc-relay: STUN + authenticated relay for mpyc-agent. See docs/relay.md.
import { parseArgs } from 'node:util';
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import { createLogger, defaultLogFormat, parseLogFormat, parseLogLevel, LOG_FORMATS, LOG_LEVELS } from '../common/log.js';
import { RelayServer, DEFAULT_LIMITS, type HostPort, type RelayLimits } from './server.js';
import { relayWsUrl } from './client.js';
import { readKeyFile, writeKeyFile } from '../common/keys.js';
import { PeerKey } from '../common/peer-key.js';
import { generateKeyPair } from '../noise/index.js';
import { runPrimary, workerLink } from './cluster.js';
import { newCookieSecret } from './cookie.js';
import { LOBBY_CLI_HELP, LOBBY_CLI_OPTIONS, lobbyOptionFromFlags } from '../lobby/relay-flags.js';

/** Numeric limits: flag, RelayServer option, help. Defaults come from DEFAULT_LIMITS. */
const LIMIT_FLAGS: Array<[flag: string, option: keyof RelayLimits, help: string]> = [
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
  -h, --help           this text

On start the relay logs one line "listening" (JSON: {"msg":"listening",...}) with the ports actually
bound (use port 0 for ephemeral ports) and the address string for session files:
  KEY@host:udpPort/httpPort
Every limit, its default and the reason for it: docs/relay.md.
SIGTERM/SIGINT: agents are told the relay is restarting, then it exits.
`;

class UsageError extends Error {}

function parseHostPort(text: string, what: string): HostPort {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:]+):(\d+)$/.exec(text);
  if (!m) throw new UsageError(`${what}: expected HOST:PORT (IPv6 as [ADDR]:PORT), got ${JSON.stringify(text)}`);
  const port = Number(m[2]);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`${what}: port out of range: ${m[2]}`);
  return { host: m[1]!, port };
}

function parseCount(text: string | undefined, what: string, def: number, allowZero = false): number {
  if (text === undefined) return def;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || (n === 0 && !allowZero)) {
    throw new UsageError(`${what}: expected a ${allowZero ? 'non-negative' : 'positive'} integer, got ${JSON.stringify(text)}`);
  }
  return n;
}

function readPem(path: string, what: string): Buffer {
  try { return readFileSync(path); } catch (err) {
    throw new UsageError(`${what}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
}

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

async function serve(argv: string[]): Promise<void> {
  const limitOptions = Object.fromEntries(LIMIT_FLAGS.map(([f]) => [f, { type: 'string' as const }]));
  const { values } = parseArgs({
    args: argv, strict: true, allowPositionals: false,
    options: {
      key: { type: 'string' }, udp: { type: 'string' }, http: { type: 'string' },
      'tls-cert': { type: 'string' }, 'tls-key': { type: 'string' },
      'public-host': { type: 'string' }, allow: { type: 'string' }, rate: { type: 'string' },
      burst: { type: 'string' }, 'max-payload': { type: 'string' }, 'max-agents': { type: 'string' },
      keepalive: { type: 'string' }, expiry: { type: 'string' }, 'log-level': { type: 'string' }, 'log-format': { type: 'string' },
      workers: { type: 'string' }, 'stun-alt-port': { type: 'string' },
      help: { type: 'boolean', short: 'h' }, ...limitOptions, ...LOBBY_CLI_OPTIONS,
    },
  });
  const v = values as Record<string, string | boolean | undefined>;
  if (values.help) { process.stdout.write(HELP); return; }
  if (!values.key) throw new UsageError('serve: --key FILE is required (create one with: mpyc-relay keygen --out FILE)');
  const level = parseLogLevel(values['log-level'] ?? 'info');
  if (!level) throw new UsageError(`--log-level: unknown level ${JSON.stringify(values['log-level'])} (one of ${LOG_LEVELS.join(', ')})`);
  const format = values['log-format'] === undefined ? defaultLogFormat() : parseLogFormat(values['log-format']);
  if (!format) throw new UsageError(`--log-format: expected ${LOG_FORMATS.join(' or ')}, got ${JSON.stringify(values['log-format'])}`);
  const log: Logger = createLogger({ service: 'mpyc-relay', level, format }).logger;
  const udp = parseHostPort(values.udp ?? '0.0.0.0:3478', '--udp');
  const httpAddr = values.http === 'off' ? undefined : parseHostPort(values.http ?? '0.0.0.0:8080', '--http');
  if (!!values['tls-cert'] !== !!values['tls-key']) throw new UsageError('--tls-cert and --tls-key go together');
  const tls = values['tls-cert'] ? { cert: readPem(values['tls-cert'], '--tls-cert'), key: readPem(values['tls-key']!, '--tls-key') } : undefined;
  if (tls && !httpAddr) throw new UsageError('--tls-cert needs the HTTP port (not --http off)');
  const keyPair = readKeyFile(values.key);
  const rate = parseCount(values.rate, '--rate', DEFAULT_LIMITS.ratePps);
  const limits: Partial<RelayLimits> = {};
  for (const [f, o, h] of LIMIT_FLAGS) {
    const rateLike = h.includes('0 = off');
    limits[o] = parseCount(v[f] as string | undefined, `--${f}`, DEFAULT_LIMITS[o as keyof typeof DEFAULT_LIMITS], rateLike);
  }
  const allowPath = values.allow;
  const allow = allowPath ? loadAllowList(allowPath) : undefined;
  const workers = parseCount(values.workers, '--workers', 1);
  const stunAltPort = parseCount(values['stun-alt-port'], '--stun-alt-port', 0, true);
  if (stunAltPort > 65535) throw new UsageError(`--stun-alt-port: port out of range: ${stunAltPort}`);
  if (stunAltPort !== 0 && stunAltPort === udp.port) throw new UsageError('--stun-alt-port: must differ from the --udp port');
  if (workers > 1 && cluster.isPrimary) {
    // every flag was checked above; the workers run this same command line
    runPrimary(workers, newCookieSecret(), (msg, o) => log.error(o ?? {}, msg));
    return;
  }
  const link = cluster.isWorker ? await workerLink() : undefined;
  const server = new RelayServer({
    keyPair, udp, http: httpAddr, tls, allow, logger: link ? log.child({ worker: link.workerId }) : log, ratePps: rate, ...limits, cluster: link,
    burst: parseCount(values.burst, '--burst', Math.max(1, Math.floor(rate / 2))),
    maxPayload: parseCount(values['max-payload'], '--max-payload', 1400),
    maxAgents: parseCount(values['max-agents'], '--max-agents', 100_000),
    keepaliveS: parseCount(values.keepalive, '--keepalive', 10),
    expiryS: parseCount(values.expiry, '--expiry', 35),
    lobby: lobbyOptionFromFlags(values),
    ...(stunAltPort !== 0 ? { stunAltPort, publicAddresses: await publicAddresses(values['public-host'], log) } : {}),
  });
  let ports;
  try {
    ports = await server.start();
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const hint = e.code === 'EADDRINUSE' ? ' (port already in use)' : e.code === 'EACCES' ? ' (permission denied)' : '';
    throw new Error(`cannot listen: ${e.message}${hint}`);
  }
  const publicHost = values['public-host'] ?? (isWildcard(udp.host) ? undefined : udp.host);
  const shown = publicHost === undefined ? undefined : publicHost.includes(':') && !publicHost.startsWith('[') ? `[${publicHost}]` : publicHost;
  const tail = `${ports.udpPort}${ports.httpPort !== undefined ? `/${ports.httpPort}` : ''}`;
  const relayAddress = shown === undefined ? null : `${server.publicKey}@${shown}:${tail}`;
  if (link && link.workerId !== 0) { handleSignals(server, log, allowPath); return; }
  log.info({
    udp: `${udp.host}:${ports.udpPort}`, stunAltPort: ports.stunAltPort ?? null, workers, http: httpAddr ? `${httpAddr.host}:${ports.httpPort}` : null,
    udpPort: ports.udpPort, httpPort: ports.httpPort ?? null, relayAddress,
    wsUrl: shown !== undefined && ports.httpPort !== undefined ? relayWsUrl(publicHost!, ports.httpPort, { tls: !!tls }) : null,
    tls: !!tls, allowList: allow ? allow.size : null,
  }, 'listening');
  if (relayAddress === null) {
    log.warn({ relayAddressTemplate: `${server.publicKey}@PUBLIC-HOST:${tail}` },
      `listening on the wildcard address ${udp.host}: pass --public-host with the name or address agents reach this relay at, and give them KEY@PUBLIC-HOST:${tail}`);
  }
  handleSignals(server, log, allowPath);
}

function handleSignals(server: RelayServer, log: Logger, allowPath: string | undefined): void {
  let stopping = false;
  const stop = (sig: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal: sig }, 'stopping: notifying agents');
    server.stop(true).then(() => process.exit(0), () => process.exit(1));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => {
    if (!allowPath) { log.info('SIGHUP: no allow-list configured'); return; }
    try {
      const next = loadAllowList(allowPath);
      server.setAllowList(next);
      log.info({ keys: next.size }, 'allow-list reloaded');
    } catch (err) {
      log.error({ err: (err as Error).message }, 'allow-list reload failed; keeping the old list');
    }
  });
}

/** keygen: stdout carries only the key (scripts read it); the label goes to stderr. */
function keygen(rest: string[]): void {
  const { values } = parseArgs({ args: rest, strict: true, options: { out: { type: 'string' }, force: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) { process.stdout.write(HELP); return; }
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
  if (cmd === 'keygen') { keygen(rest); return; }
  if (cmd === 'pubkey') {
    const { values } = parseArgs({ args: rest, strict: true, options: { key: { type: 'string' } } });
    if (!values.key) throw new UsageError('pubkey: --key FILE is required');
    process.stdout.write(PeerKey.fromBytes(readKeyFile(values.key).publicKey).text + '\n');
    return;
  }
  if (cmd === 'serve') { await serve(rest); return; }
  throw new UsageError(`unknown command ${JSON.stringify(cmd)}; see mpyc-relay --help`);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  const msg = err instanceof Error ? err.message : String(err);
  process.stderr.write(`mpyc-relay: ${msg}\n`);
  if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) process.stderr.write('Try: mpyc-relay --help\n');
  process.exit(2);
});
