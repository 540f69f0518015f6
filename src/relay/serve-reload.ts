// The running relay's signals. SIGTERM/SIGINT: every agent is told the relay is restarting,
// then it exits 0 (a second signal exits at once). SIGHUP (systemd's ExecReload): re-read the
// config file and the allow-list and apply what can change at run time (RELOADABLE: the
// allow-list, the log level and format); every other changed option is logged as needing a
// restart. A file that cannot be used changes nothing. With --workers the primary passes
// each signal to every worker (cluster.ts) and each worker reloads for itself.
import type { Logger } from 'pino';
import { EXIT } from '../common/cli.js';
import type { Config } from '../common/config.js';
import type { DaemonLogger } from '../common/log.js';
import { loadAllowList } from './allow-list.js';
import type { RelayServer } from './server.js';
import { RELOADABLE, type ServeOptions } from './serve-options.js';
import { settingsFrom } from './serve-settings.js';

export interface SignalContext {
  log: DaemonLogger;
  startConfig: Config<ServeOptions>;
  reloadConfig: () => Config<ServeOptions>;
  allowPath: string | undefined;
}

interface Running { server: RelayServer; logger: Logger }

/** Re-reads the config and the allow-list; applies the reloadable settings or, on any error, nothing. */
function reloader(x: SignalContext, r: Running): () => void {
  let current = x.startConfig;
  let allowPath = x.allowPath;
  return () => {
    let next: Config<ServeOptions>;
    let allow: Set<string> | undefined;
    let settings: ReturnType<typeof settingsFrom>;
    try {
      next = x.reloadConfig();
      settings = settingsFrom(next);
      allow = settings.allowPath !== undefined ? loadAllowList(settings.allowPath) : undefined;
    } catch (err) {
      r.logger.error({ err: (err as Error).message }, 'config reload failed; keeping the current settings');
      return;
    }
    // the level first, so this reload's own lines follow it
    x.log.setLevel(settings.logLevel);
    x.log.setFormat(settings.logFormat);
    r.server.setAllowList(allow);
    if (allow) r.logger.info({ keys: allow.size, file: settings.allowPath }, 'allow-list reloaded');
    else if (allowPath !== undefined) r.logger.warn({ was: allowPath }, 'allow-list removed from the configuration: any agent key may register');
    allowPath = settings.allowPath;
    const applied = current.changedKeys(next).filter((k) => RELOADABLE.includes(k as never));
    // compared with what runs (the start), so every reload repeats what still waits for a restart
    const needRestart = x.startConfig.changedKeys(next).filter((k) => !RELOADABLE.includes(k as never));
    if (needRestart.length > 0) r.logger.warn({ options: needRestart }, 'config changed; these options take effect after a restart');
    r.logger.info({ config: next.filePath ?? null, applied, logLevel: settings.logLevel, logFormat: settings.logFormat }, 'config reloaded');
    current = next;
  };
}

export interface Signals {
  /** the server exists: a SIGHUP that came before is applied now */
  attach(server: RelayServer, logger: Logger): void;
  /** the server listens: a stop asked for before happens now */
  started(): void;
}

/**
 * Installs the handlers at once, before the server's modules load: a signal without one
 * would kill the process (SIGHUP's default). Until attach() a SIGHUP is remembered, until
 * started() a SIGTERM/SIGINT.
 */
export function watchSignals(x: SignalContext): Signals {
  let running: Running | undefined;
  let reload: (() => void) | undefined;
  let reloadPending = false;
  let listening = false;
  let stopRequested: string | undefined;
  let stopping = false;
  const logger = (): Logger => running?.logger ?? x.log.logger;
  const stop = (sig: string): void => {
    if (stopping || stopRequested !== undefined) {
      logger().warn({ signal: sig }, 'second signal; exiting now');
      process.exit(EXIT.FAILURE);
    }
    if (!listening || !running) { stopRequested = sig; return; }
    stopping = true;
    logger().info({ signal: sig }, 'stopping: notifying agents');
    running.server.stop(true).then(() => process.exit(EXIT.OK), () => process.exit(EXIT.FAILURE));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => { if (reload) reload(); else reloadPending = true; });
  return {
    attach(server, l) {
      running = { server, logger: l };
      reload = reloader(x, running);
      if (reloadPending) reload();
    },
    started() {
      listening = true;
      if (stopRequested !== undefined) { const sig = stopRequested; stopRequested = undefined; stop(sig); }
    },
  };
}
