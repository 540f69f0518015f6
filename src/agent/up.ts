// `mpyc-agent up [SESSION] [options]`: the party daemon in the foreground (systemd-friendly:
// logs to stderr, the MPyC command line to stdout, exits 0 on SIGTERM/SIGINT, SIGHUP
// reloads the config file). The settings (up-settings.ts) come from flags, MPYC_AGENT_*
// variables and a config file (src/common/config.ts). The agent itself (with ws and
// prom-client) loads only once the settings are valid, so `up --help` and mistakes answer
// at once.
import { EXIT, UsageError, expectPositionals, parseCommandLine, type OptionValues } from '../common/cli.js';
import { loadConfig, type Config } from '../common/config.js';
import { createLogger } from '../common/log.js';
import { readKeyFile } from '../common/keys.js';
import { PeerKey } from '../common/peer-key.js';
import { findOwnIndex, loadSessionFile } from './session-file.js';
import { controlSocketPath, defaultControlDir, ensureControlDir, startControlServer, type ControlServer } from './control.js';
import type { MetricsEndpoint } from './metrics-http.js';
import { COMMAND_LINE, ENV_PREFIX, RELOADABLE, UP_HELP, UP_OPTIONS, settingsFrom, type UpOptions, type UpSettings } from './up-settings.js';
import type { AgentKeyPair } from './types.js';

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
    sessionPath: 'session', keyPath: 'key', relayOnly: 'relay-only', portMapping: 'portmap', relayTransport: 'relay-transport', bind: 'bind', bind6: 'bind6', udpPort: 'udp-port',
    localBase: 'local-base', listen: 'listen', forwards: 'forward', allowedPorts: 'allow-port', control: 'control', metrics: 'metrics',
    stopGraceMs: 'stop-grace', peerOfflineMs: 'peer-offline', offlineCloseMs: 'offline-close', logLevel: 'log-level', logFormat: 'log-format',
  };
  // a switch turned off on the command line came from --no-NAME, not --NAME
  const originText = (key: keyof UpOptions): string => (c.origin(key) === `--${key}` && c.get(key) === false ? `--no-${key}` : c.origin(key));
  for (const [k, v] of Object.entries(shown)) {
    const key = originOf[k];
    lines.push(`  ${k.padEnd(width)}  ${JSON.stringify(v)}  (${key ? originText(key) : 'default'})`);
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
    localBase: p.localBase, relayOnly: settings.relayOnly, portMapping: settings.portMapping, relayTransport: settings.relayTransport,
    udpBind: { host: settings.bind, port: settings.udpPort }, ...(settings.bind6 !== undefined ? { udpBind6: settings.bind6 } : {}),
    stopGraceMs: settings.stopGraceMs, peerOfflineMs: settings.peerOfflineMs, offlineCloseMs: settings.offlineCloseMs, allowedPorts: settings.allowedPorts, forwards: settings.forwards,
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
    control = await startControlServer(controlPath, { status: () => agent.status(), metrics: () => agent.metrics(), ping: (i, o) => agent.ping(i, o) });
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
