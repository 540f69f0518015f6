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
  server: RelayServer;
  log: DaemonLogger;
  logger: Logger;
  startConfig: Config<ServeOptions>;
  reloadConfig: () => Config<ServeOptions>;
  allowPath: string | undefined;
}

/** Re-reads the config and the allow-list; applies the reloadable settings or, on any error, nothing. */
function reloader(x: SignalContext): () => void {
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
      x.logger.error({ err: (err as Error).message }, 'config reload failed; keeping the current settings');
      return;
    }
    x.server.setAllowList(allow);
    if (allow) x.logger.info({ keys: allow.size, file: settings.allowPath }, 'allow-list reloaded');
    else if (allowPath !== undefined) x.logger.warn({ was: allowPath }, 'allow-list removed from the configuration: any agent key may register');
    allowPath = settings.allowPath;
    x.log.setLevel(settings.logLevel);
    x.log.setFormat(settings.logFormat);
    const applied = current.changedKeys(next).filter((k) => RELOADABLE.includes(k as never));
    // compared with what runs (the start), so every reload repeats what still waits for a restart
    const needRestart = x.startConfig.changedKeys(next).filter((k) => !RELOADABLE.includes(k as never));
    if (needRestart.length > 0) x.logger.warn({ options: needRestart }, 'config changed; these options take effect after a restart');
    x.logger.info({ config: next.filePath ?? null, applied, logLevel: settings.logLevel, logFormat: settings.logFormat }, 'config reloaded');
    current = next;
  };
}

/** Installs the handlers now (a signal without one would kill the process); call started() once listening. */
export function watchSignals(x: SignalContext): { started(): void } {
  let running = false;
  let stopRequested: string | undefined;
  let stopping = false;
  const stop = (sig: string): void => {
    if (stopping || stopRequested !== undefined) {
      x.logger.warn({ signal: sig }, 'second signal; exiting now');
      process.exit(EXIT.FAILURE);
    }
    if (!running) { stopRequested = sig; return; }
    stopping = true;
    x.logger.info({ signal: sig }, 'stopping: notifying agents');
    x.server.stop(true).then(() => process.exit(EXIT.OK), () => process.exit(EXIT.FAILURE));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', reloader(x));
  return {
    started() {
      running = true;
      if (stopRequested !== undefined) { const sig = stopRequested; stopRequested = undefined; stop(sig); }
    },
  };
}
