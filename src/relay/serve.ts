// `mpyc-relay serve [options]`: the relay in the foreground. The settings come from flags,
// MPYC_RELAY_* variables and a config file (serve-options.ts, serve-settings.ts); the files
// they name are read and checked before anything listens, and `--check` stops there with a
// report. The server, ws, sodium and the cluster load only after that (dynamic import), so
// --help and mistakes answer at once. SIGHUP: serve-reload.ts.
import cluster from 'node:cluster';
import { isIP } from 'node:net';
import { lookup } from 'node:dns/promises';
import type { Logger } from 'pino';
import { EXIT, expectPositionals, parseCommandLine } from '../common/cli.js';
import { loadConfig, type Config } from '../common/config.js';
import { PeerKey } from '../common/peer-key.js';
import { createLogger } from '../common/log.js';
import { ENV_PREFIX, SERVE_COMMAND_LINE, SERVE_HELP, SERVE_OPTIONS, type ServeOptionName, type ServeOptions } from './serve-options.js';
import type { ServeSettings } from './serve-settings.js';
import type { ServeFiles } from './serve-files.js';

type ServeConfig = Config<ServeOptions>;

/** The settings and what their files hold, checked: nothing is listening yet. */
interface Loaded extends ServeFiles { settings: ServeSettings }

function checkReport(l: Loaded, c: ServeConfig): string {
  const lines = [`mpyc-relay serve: settings are valid; relay key ${PeerKey.fromBytes(l.keyPair.publicKey).text}`];
  if (c.filePath !== undefined) lines.push(`config file: ${c.filePath}`);
  lines.push(l.allow ? `allow-list: ${l.allow.size} agent keys` : 'allow-list: none (any agent key may register)');
  const shown = Object.entries(l.settings.shown) as [ServeOptionName, unknown][];
  const width = Math.max(...shown.map(([k]) => k.length));
  for (const [k, v] of shown) lines.push(`  ${k.padEnd(width)}  ${JSON.stringify(v)}  (${c.origin(k)})`);
  return lines.join('\n') + '\n';
}

/** A listen failure as the operator needs it: which port, why, and the option that sets it. */
function listenError(err: unknown, s: ServeSettings, c: ServeConfig): Error {
  const e = err as NodeJS.ErrnoException;
  // dgram reports bind(2) failures, the HTTP server listen(2) failures
  const name: ServeOptionName = e.syscall === 'bind' ? 'udp' : 'http';
  const at = s.shown[name];
  const what = `${name === 'udp' ? 'UDP' : 'TCP (HTTP)'} port ${String(at).replace(/.*:/, '')}`;
  const choose = `choose --${name} HOST:PORT${c.origin(name) !== 'default' ? ` (now from ${c.origin(name)})` : ''}`;
  const why = e.code === 'EADDRINUSE' ? `${what} in use (${at}): another relay running? ${choose}`
    : e.code === 'EACCES' ? `${what}: permission denied (${at}; ports below 1024 need root or CAP_NET_BIND_SERVICE); ${choose}`
    : e.code === 'EADDRNOTAVAIL' ? `${at}: not an address of this host; ${choose}`
    : `cannot listen on ${at} (--${name}): ${e.message}`;
  return new Error(why);
}

export async function runServe(argv: string[]): Promise<number> {
  const { help, values, positionals } = parseCommandLine(argv, SERVE_COMMAND_LINE);
  if (help) { process.stdout.write(SERVE_HELP); return EXIT.OK; }
  expectPositionals(positionals, 0, 0, 'nothing');
  const { config: configFlag, check, ...flags } = values;
  const load = (): ServeConfig => loadConfig(SERVE_OPTIONS, { flags, env: process.env, envPrefix: ENV_PREFIX, ...(configFlag !== undefined ? { configFlag } : {}) });
  const config = load();
  // loaded only now: the lobby's checks and the key reader bring sodium
  const [{ settingsFrom }, { loadServeFiles }] = await Promise.all([import('./serve-settings.js'), import('./serve-files.js')]);
  const settings = settingsFrom(config);
  const loaded: Loaded = { settings, ...loadServeFiles(settings) };
  if (check) {
    loaded.keyPair.privateKey.fill(0);
    process.stdout.write(checkReport(loaded, config));
    return EXIT.OK;
  }
  await runRelay(loaded, config, load);
  return EXIT.OK;
}

async function runRelay(l: Loaded, startConfig: ServeConfig, reloadConfig: () => ServeConfig): Promise<void> {
  const { settings: s } = l;
  const log = createLogger({ service: 'mpyc-relay', level: s.logLevel, format: s.logFormat });
  if (s.workers > 1 && cluster.isPrimary) {
    // every setting and file was checked above; the workers run this same command line and environment
    l.keyPair.privateKey.fill(0);
    const [{ runPrimary }, { newCookieSecret }] = await Promise.all([import('./cluster.js'), import('./cookie.js')]);
    await runPrimary(s.workers, s.udp, newCookieSecret(), (msg, o) => log.logger.error(o ?? {}, msg));
    return;
  }
  const signals = (await import('./serve-reload.js')).watchSignals({ log, startConfig, reloadConfig, allowPath: s.allowPath });
  const [{ RelayServer }, { workerLink }, { relayWsUrl }] = await Promise.all([import('./server.js'), import('./cluster.js'), import('./client.js')]);
  const link = cluster.isWorker ? await workerLink() : undefined;
  const logger = link ? log.logger.child({ worker: link.workerId }) : log.logger;
  const server = new RelayServer({
    keyPair: l.keyPair, udp: s.udp, http: s.http, tls: l.tls, allow: l.allow, logger, cluster: link, ...s.limits,
    maxPayload: s.maxPayload, maxAgents: s.maxAgents, keepaliveS: s.keepaliveS, expiryS: s.expiryS, lobby: s.lobby,
    ...(s.stunAltPort !== 0 ? { stunAltPort: s.stunAltPort, stunAltOptional: s.stunAltAuto, publicAddresses: await publicAddresses(s.publicHost, logger) } : {}),
  });
  signals.attach(server, logger);
  let ports;
  try {
    ports = await server.start();
  } catch (err) {
    throw listenError(err, s, startConfig);
  }
  signals.started();
  link?.bound();
  // one "listening" line per relay (worker 0 speaks for all), one short line per other worker
  if (link && link.workerId !== 0) { logger.info({ udpPort: ports.udpPort, httpPort: ports.httpPort ?? null }, 'worker listening'); return; }
  const shown = s.publicHost === undefined ? undefined : s.publicHost.includes(':') && !s.publicHost.startsWith('[') ? `[${s.publicHost}]` : s.publicHost;
  // the agents' session-file form: /https:PORT when the HTTP port speaks TLS (their WebSocket is then wss://)
  const tail = `${ports.udpPort}${ports.httpPort !== undefined ? `/${l.tls ? 'https:' : ''}${ports.httpPort}` : ''}`;
  const relayAddress = shown === undefined ? null : `${server.publicKey}@${shown}:${tail}`;
  logger.info({
    udp: `${s.udp.host}:${ports.udpPort}`, stunAltPort: ports.stunAltPort ?? null, workers: s.workers,
    // how the workers share the UDP port (cluster.ts): their own sockets, or one shared socket
    ...(link ? { udpSharing: link.udpReusePort !== undefined ? 'reuseport' : 'shared' } : {}), http: s.http ? `${s.http.host}:${ports.httpPort}` : null,
    udpPort: ports.udpPort, httpPort: ports.httpPort ?? null, relayAddress,
    wsUrl: shown !== undefined && ports.httpPort !== undefined ? relayWsUrl(s.publicHost!, ports.httpPort, { tls: !!l.tls }) : null,
    tls: !!l.tls, allowList: l.allow ? l.allow.size : null, config: startConfig.filePath ?? null,
  }, 'listening');
  if (link && link.udpReusePort === undefined) {
    logger.warn({ node: process.version }, 'the workers share one UDP socket (this Node sets no SO_REUSEPORT for UDP; Node >= 22.12 does): UDP forwarding does not scale past one worker, see docs/relay.md "Using every core"');
  }
  if (relayAddress === null) {
    logger.warn({ relayAddressTemplate: `${server.publicKey}@PUBLIC-HOST:${tail}` },
      `listening on the wildcard address ${s.udp.host}: pass --public-host with the name or address agents reach this relay at, and give them KEY@PUBLIC-HOST:${tail}`);
  }
}

/**
 * The addresses OTHER-ADDRESS names (the relay's own, as agents reach it): --public-host
 * resolved, or undefined to let the server name its bound address. A name that does not
 * resolve leaves OTHER-ADDRESS out rather than naming a wrong address.
 */
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
