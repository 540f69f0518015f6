// `mpyc-agent up SESSION --key FILE`: the party daemon in the foreground (systemd-friendly:
// logs JSON lines to stderr, the MPyC command line to stdout, exits 0 on SIGTERM/SIGINT).
import { createServer, type Server } from 'node:http';
import { parseArgs } from 'node:util';
import { isIP } from 'node:net';
import pino from 'pino';
import { readKeyFile } from '../common/keys.js';
import { encodeKey } from '../common/base64.js';
import { Agent } from './agent.js';
import { loadSessionFile, findOwnIndex } from './session-file.js';
import { controlSocketPath, defaultControlDir, ensureControlDir, startControlServer } from './control.js';
import type { GenericForward, RelayTransportChoice } from './types.js';

export const DEFAULT_KEY_FILE = 'mpyc-agent.key';

export const UP_HELP = `mpyc-agent up SESSION [options]

Runs this party's agent in the foreground until SIGINT/SIGTERM. Finds this party's index
in the session file by its public key, registers with the relay, reaches every other
party (directly when possible, else through the relay) and listens on loopback at
base+j for every other party j, exactly where MPyC connects. Prints the MPyC command
line to run (stdout); logs JSON lines (stderr).

Options:
  --key FILE              private key file (default ./${DEFAULT_KEY_FILE}; create it with keygen)
  --relay-only            never reveal this host's addresses to the other parties:
                          no candidates, no probes, all traffic through the relay
  --relay-transport MODE  auto (UDP, falling back to WebSocket; default), udp, or ws
  --bind HOST             local address of the agent's UDP socket (default 0.0.0.0)
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
  --metrics HOST:PORT     serve Prometheus metrics at http://HOST:PORT/metrics (off by default)
  --log-level LEVEL       fatal, error, warn, info (default), debug, trace
  -h, --help              this text
`;

export class UsageError extends Error {}

function intOption(v: string | undefined, name: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) throw new UsageError(`--${name} must be an integer in ${min}..${max}, got ${JSON.stringify(v)}`);
  return Number(v);
}

function parseForward(text: string): GenericForward {
  const m = /^(\d+):(\d+):(\d+)$/.exec(text);
  if (!m) throw new UsageError(`--forward wants LOCALPORT:PARTY:REMOTEPORT, got ${JSON.stringify(text)}`);
  const [localPort, peerIndex, remotePort] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (localPort < 1 || localPort > 65535 || remotePort < 1 || remotePort > 65535) throw new UsageError(`--forward ${text}: ports must be 1..65535`);
  return { localPort, peerIndex, remotePort };
}

function parseHostPort(text: string, what: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(text);
  if (!m || Number(m[2]) > 65535) throw new UsageError(`${what} wants HOST:PORT, got ${JSON.stringify(text)}`);
  return { host: m[1]!, port: Number(m[2]) };
}

export async function runUp(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args: argv, strict: true, allowPositionals: true, options: {
    key: { type: 'string' }, 'relay-only': { type: 'boolean' }, 'relay-transport': { type: 'string' },
    bind: { type: 'string' }, 'udp-port': { type: 'string' }, 'local-base': { type: 'string' },
    listen: { type: 'string', multiple: true }, forward: { type: 'string', multiple: true },
    'allow-port': { type: 'string', multiple: true }, control: { type: 'string' }, metrics: { type: 'string' },
    'log-level': { type: 'string' }, help: { type: 'boolean', short: 'h' },
  } });
  if (values.help) { process.stdout.write(UP_HELP); return; }
  if (positionals.length !== 1) throw new UsageError('up needs exactly one SESSION file');
  const level = values['log-level'] ?? 'info';
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(level)) throw new UsageError(`--log-level: unknown level ${JSON.stringify(level)}`);
  const transport = (values['relay-transport'] ?? 'auto') as RelayTransportChoice;
  if (!['auto', 'udp', 'ws'].includes(transport)) throw new UsageError(`--relay-transport must be auto, udp or ws, got ${JSON.stringify(transport)}`);
  const bindHost = values.bind ?? '0.0.0.0';
  if (isIP(bindHost) !== 4) throw new UsageError(`--bind wants an IPv4 address, got ${JSON.stringify(bindHost)}`);
  const udpPort = intOption(values['udp-port'], 'udp-port', 0, 65535) ?? 0;

  const keyPair = readKeyFile(values.key ?? DEFAULT_KEY_FILE);
  const ownKey = encodeKey(keyPair.publicKey);
  const session = loadSessionFile(positionals[0]!);
  const ownIndex = findOwnIndex(session, ownKey, positionals[0]!);
  const m = session.parties.length;
  const localBase = intOption(values['local-base'], 'local-base', 1, 65535 - m + 1) ?? session.basePort;
  const forwards = (values.forward ?? []).map(parseForward);
  for (const f of forwards) {
    if (f.peerIndex >= m || f.peerIndex === ownIndex) throw new UsageError(`--forward ${f.localPort}:${f.peerIndex}:${f.remotePort}: party ${f.peerIndex} is not another party of this ${m}-party session`);
    if (f.localPort >= localBase && f.localPort < localBase + m) throw new UsageError(`--forward ${f.localPort}: collides with MPyC's ports ${localBase}..${localBase + m - 1}`);
  }
  const allowedPorts = (values['allow-port'] ?? []).map((p) => intOption(p, 'allow-port', 1, 65535)!);

  const logger = pino({ level, base: { party: ownIndex } }, pino.destination(2));
  const agent = new Agent({
    keyPair, ownIndex, parties: session.parties, relays: session.relays, basePort: session.basePort, localBase,
    relayOnly: values['relay-only'] ?? false, relayTransport: transport, udpBind: { host: bindHost, port: udpPort },
    allowedPorts, forwards, listenHosts: values.listen, logger,
  });
  try {
    await agent.start();
  } catch (err) {
    await agent.stop();
    throw err;
  }
  try {
    await serve(agent, values.control, values.metrics, ownKey, ownIndex, m, logger);
  } catch (err) {
    await agent.stop();
    throw err;
  }
}

async function serve(agent: Agent, controlOption: string | undefined, metricsOption: string | undefined, ownKey: string,
  ownIndex: number, m: number, logger: pino.Logger): Promise<void> {
  let controlPath = controlOption;
  if (!controlPath) {
    const dir = defaultControlDir();
    ensureControlDir(dir);
    controlPath = controlSocketPath(ownKey, dir);
  }
  const control = await startControlServer(controlPath, { status: () => agent.status(), metrics: () => agent.metrics() });
  let metricsServer: Server | undefined;
  if (metricsOption) {
    const { host, port } = parseHostPort(metricsOption, '--metrics');
    metricsServer = createServer((req, res) => {
      if (req.url !== '/metrics') { res.writeHead(404).end('not found\n'); return; }
      agent.metrics().then((text) => res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(text),
        (err: unknown) => res.writeHead(500).end(String(err)));
    });
    await new Promise<void>((resolve, reject) => { metricsServer!.once('error', reject); metricsServer!.listen(port, host, () => resolve()); });
  }
  // signal handlers before the ready line: whoever reads it may signal at once
  const stopped = new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (sig: string): void => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal: sig }, 'stopping');
      void Promise.all([agent.stop(), control.close(), new Promise<void>((r) => (metricsServer ? metricsServer.close(() => r()) : r()))]).then(() => resolve());
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  const cmd = agent.status().mpycCommand;
  process.stdout.write(`mpyc-agent: party ${ownIndex} of ${m}; run MPyC as:\n  ${cmd}\n`);
  logger.info({ mpycCommand: cmd, control: controlPath }, 'ready');
  await stopped;
}
