// One logger factory for both daemons. pino is the engine (structured, cheap when a level
// is off); this module decides how its lines look and where they go:
//   human — on a terminal: `2026-12-01 21:36:27.123 INFO  path change peer=2 from=relay to=direct`
//           (local time, level word, message, key=value fields; control characters replaced)
//   json  — otherwise (journald, files, pipes): one JSON object per line,
//           {"level":"info","time":<ms since the epoch>,"service":...,"msg":...,...fields}
// Everything goes to stderr: stdout is for program output (the MPyC command line).
// Level and format can change while running (SIGHUP reload): child loggers made before
// the change follow it, because pino children read the level from their parent unless
// they set their own.
//
// API: createLogger({service, level, format, bindings?, sink?}) → {logger, setLevel, setFormat}
//      parseLogLevel / parseLogFormat (text → value or null), defaultLogFormat(stream)
import { pino, type Logger } from 'pino';
import { UsageError, formatLocalTime, printable } from './cli.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ['human', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export function parseLogLevel(text: string): LogLevel | null {
  return (LOG_LEVELS as readonly string[]).includes(text) ? (text as LogLevel) : null;
}

export function parseLogFormat(text: string): LogFormat | null {
  return (LOG_FORMATS as readonly string[]).includes(text) ? (text as LogFormat) : null;
}

/** human on a terminal, json anywhere else */
export function defaultLogFormat(stream: { isTTY?: boolean } = process.stderr): LogFormat {
  return stream.isTTY ? 'human' : 'json';
}

export interface LoggerOptions {
  /** the program, e.g. "mpyc-agent": a field of every JSON line (left out of human lines) */
  service: string;
  level: LogLevel;
  format: LogFormat;
  /** fields on every line, e.g. {party: 1} */
  bindings?: Record<string, unknown>;
  /** where finished lines go (default: stderr, written synchronously so nothing is lost at exit) */
  sink?: (line: string) => void;
}

export interface DaemonLogger {
  logger: Logger;
  setLevel(level: LogLevel): void;
  setFormat(format: LogFormat): void;
  readonly format: LogFormat;
}

export function createLogger(o: LoggerOptions): DaemonLogger {
  let sink = o.sink;
  if (!sink) {
    // a log reader that went away (EPIPE, a closed terminal's EIO) must not take the daemon down
    if (process.stderr.listenerCount('error') === 0) process.stderr.on('error', () => undefined);
    sink = (line: string) => { process.stderr.write(line); };
  }
  const write = sink;
  let format = o.format;
  const destination = { write: (jsonLine: string): void => write(format === 'json' ? jsonLine : humanLine(jsonLine)) };
  const logger = pino({
    level: o.level,
    base: { service: o.service, ...o.bindings },
    formatters: { level: (label) => ({ level: label }) },
  }, destination);
  return {
    logger,
    setLevel: (level) => { logger.level = level; },
    setFormat: (f) => { format = f; },
    get format() { return format; },
  };
}

// ---- the human line ----

/** fields a human line shows elsewhere (time, level, message) or not at all (one program per terminal) */
const HUMAN_SKIP = new Set(['level', 'time', 'msg', 'service', 'pid', 'hostname']);
const LEVEL_WORDS: Record<string, string> = { fatal: 'FATAL', error: 'ERROR', warn: 'WARN ', info: 'INFO ', debug: 'DEBUG', trace: 'TRACE' };

/** A value as `key=value` shows it: bare when unambiguous, else quoted (JSON string rules). */
function humanValue(v: unknown): string {
  // bare only without spaces, quotes, '=' and control characters; JSON escapes those (printable catches C1 controls)
  if (typeof v === 'string') return /^[^\s"=\p{C}]+$/u.test(v) ? v : printable(JSON.stringify(v));
  if (typeof v === 'object' && v !== null) return printable(JSON.stringify(v));
  return String(v);
}

/** An Error as pino serializes it: {type, message, stack} */
function isSerializedError(v: unknown): v is { message: string; stack?: string } {
  return typeof v === 'object' && v !== null && typeof (v as { message?: unknown }).message === 'string' && 'type' in v;
}

/** Turns one of pino's JSON lines into the human line; a line that is not JSON passes through. */
export function humanLine(jsonLine: string): string {
  let rec: Record<string, unknown>;
  try { rec = JSON.parse(jsonLine) as Record<string, unknown>; } catch { return jsonLine; }
  const time = typeof rec.time === 'number' ? formatLocalTime(rec.time) : '-';
  const level = LEVEL_WORDS[String(rec.level)] ?? String(rec.level).toUpperCase();
  const parts = [time, level, printable(String(rec.msg ?? ''))];
  const stacks: string[] = [];
  for (const [k, v] of Object.entries(rec)) {
    if (HUMAN_SKIP.has(k)) continue;
    if (isSerializedError(v)) {
      parts.push(`${k}=${humanValue(v.message)}`);
      if (v.stack) stacks.push(...v.stack.split('\n').slice(1).map((l) => `    ${printable(l.trim())}`));
      continue;
    }
    parts.push(`${k}=${humanValue(v)}`);
  }
  return [parts.join(' '), ...stacks].join('\n') + '\n';
}

/**
 * The log-level and log-format settings of a daemon's configuration (both daemons have
 * them): level default info, format default by the terminal; errors name the origin.
 */
export function logSettingsIn(level: string | undefined, format: string | undefined, originOf: (key: 'log-level' | 'log-format') => string): { logLevel: LogLevel; logFormat: LogFormat } {
  const logLevel = parseLogLevel(level ?? 'info');
  if (!logLevel) throw new UsageError(`${originOf('log-level')}: unknown level ${JSON.stringify(level)} (${LOG_LEVELS.join(', ')})`);
  const logFormat = format === undefined ? defaultLogFormat() : parseLogFormat(format);
  if (!logFormat) throw new UsageError(`${originOf('log-format')}: unknown format ${JSON.stringify(format)} (${LOG_FORMATS.join(', ')})`);
  return { logLevel, logFormat };
}
