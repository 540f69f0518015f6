#!/usr/bin/env node
// mpyc-relay: STUN + authenticated relay for mpyc-agent. See docs/relay.md.
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { pino, type Logger } from 'pino';
import { RelayServer, type HostPort } from './server.js';
import { readKeyFile, writeKeyFile } from '../common/keys.js';
import { PeerKey } from '../common/peer-key.js';

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
  --http HOST:PORT     HTTP address for the WebSocket endpoint /relay, /metrics and
                       /healthz (default 0.0.0.0:8080); "off" disables HTTP
  --public-host HOST   host name agents use to reach this relay; goes into the printed
                       address string (default: the UDP host, or this machine's hostname
                       when listening on a wildcard address)
  --allow FILE         allow-list: one base64 agent public key per line, '#' comments;
                       without it any agent key may register. Reloaded on SIGHUP.
  --rate PPS           per-agent forwarding limit in packets per second (default 100000)
  --burst N            per-agent burst in packets (default rate/2)
  --max-payload BYTES  largest forwarded payload (default 1400)
  --max-agents N       most registered agents (default 100000)
  --keepalive S        keepalive interval suggested to agents (default 10)
  --expiry S           registration lifetime without traffic (default 35)
  --log-level LEVEL    fatal|error|warn|info|debug|trace|silent (default info)
  -h, --help           this text

On start the relay logs one JSON line {"msg":"listening",...} with the ports actually
bound (use port 0 for ephemeral ports) and the address string for session files:
  KEY@host:udpPort/httpPort
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

function parsePositive(text: string | undefined, what: string, def: number): number {
  if (text === undefined) return def;
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0 || !Number.isInteger(n)) throw new UsageError(`${what}: expected a positive integer, got ${JSON.stringify(text)}`);
  return n;
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

async function serve(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv, strict: true, allowPositionals: false,
    options: {
      key: { type: 'string' }, udp: { type: 'string' }, http: { type: 'string' },
      'public-host': { type: 'string' }, allow: { type: 'string' }, rate: { type: 'string' },
      burst: { type: 'string' }, 'max-payload': { type: 'string' }, 'max-agents': { type: 'string' },
      keepalive: { type: 'string' }, expiry: { type: 'string' }, 'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) { process.stdout.write(HELP); return; }
  if (!values.key) throw new UsageError('serve: --key FILE is required (create one with: mpyc-relay keygen --out FILE)');
  const level = values['log-level'] ?? 'info';
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(level)) throw new UsageError(`--log-level: unknown level ${JSON.stringify(level)}`);
  const log: Logger = pino({ level, base: { service: 'mpyc-relay' } });
  const udp = parseHostPort(values.udp ?? '0.0.0.0:3478', '--udp');
  const httpAddr = values.http === 'off' ? undefined : parseHostPort(values.http ?? '0.0.0.0:8080', '--http');
  const keyPair = readKeyFile(values.key);
  const rate = parsePositive(values.rate, '--rate', 100_000);
  const allowPath = values.allow;
  const allow = allowPath ? loadAllowList(allowPath) : undefined;
  const server = new RelayServer({
    keyPair, udp, http: httpAddr, allow, logger: log, ratePps: rate,
    burst: parsePositive(values.burst, '--burst', Math.max(1, Math.floor(rate / 2))),
    maxPayload: parsePositive(values['max-payload'], '--max-payload', 1400),
    maxAgents: parsePositive(values['max-agents'], '--max-agents', 100_000),
    keepaliveS: parsePositive(values.keepalive, '--keepalive', 10),
    expiryS: parsePositive(values.expiry, '--expiry', 35),
  });
  let ports;
  try {
    ports = await server.start();
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const hint = e.code === 'EADDRINUSE' ? ' (port already in use)' : e.code === 'EACCES' ? ' (permission denied)' : '';
    throw new Error(`cannot listen: ${e.message}${hint}`);
  }
  const wildcard = udp.host === '0.0.0.0' || udp.host === '::';
  let host = values['public-host'] ?? (wildcard ? hostname() : udp.host);
  if (host.includes(':')) host = `[${host}]`;
  const relayAddress = `${server.publicKey}@${host}:${ports.udpPort}${ports.httpPort !== undefined ? `/${ports.httpPort}` : ''}`;
  log.info({ udp: `${udp.host}:${ports.udpPort}`, http: httpAddr ? `${httpAddr.host}:${ports.httpPort}` : null,
    udpPort: ports.udpPort, httpPort: ports.httpPort ?? null, relayAddress, allowList: allow ? allow.size : null }, 'listening');
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

async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '-h' || cmd === '--help' || cmd === 'help') { process.stdout.write(HELP); return; }
  if (cmd === 'keygen') {
    const { values } = parseArgs({ args: rest, strict: true, options: { out: { type: 'string' }, force: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
    if (values.help) { process.stdout.write(HELP); return; }
    if (values.out) {
      const kp = writeKeyFile(values.out, { force: values.force ?? false });
      process.stdout.write(PeerKey.fromBytes(kp.publicKey).text + '\n');
    } else {
      const { generateKeyPair } = await import('./handshake.js');
      process.stdout.write(Buffer.from(generateKeyPair().privateKey).toString('base64') + '\n');
    }
    return;
  }
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
