// The command-line surface shared by mpyc-agent and mpyc-relay: exit codes and the error
// kinds that map to them, option parsing with our own messages (never Node's parser text),
// the package version, and terminal-safe text. Every CLI loads this before parsing its
// arguments, so it imports Node built-ins only (`--help` must answer at once).
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';

/** Exit codes, the same for every command of both programs (docs/agent.md "Exit codes"). */
export const EXIT = {
  OK: 0,
  /** failed at run time: the agent is not reachable, the network, a port in use */
  FAILURE: 1,
  /** bad command line or configuration: unknown option, missing or bad value, environment, config file */
  USAGE: 2,
  /** an unusable key or session file: missing, unreadable, wrong mode or invalid */
  BAD_FILE: 3,
} as const;

/** The exit-code paragraph for --help texts. */
export const EXIT_CODES_HELP = `Exit codes (every command):
  0  success
  1  failure at run time: the agent is not reachable, the network, a port in use
  2  bad command line or configuration: unknown option, missing or bad value,
     environment variable or config file
  3  unusable key or session file: missing, unreadable, wrong mode or invalid
`;

/** A bad command line, environment variable or config file value (exit 2). */
export class UsageError extends Error {
  override name = 'UsageError';
  readonly exitCode: number = EXIT.USAGE;
}

/** A key or session file that cannot be used (exit 3); the message names the file. */
export class InputFileError extends Error {
  override name = 'InputFileError';
  readonly exitCode: number = EXIT.BAD_FILE;
}

/** The exit code for an error: its own `exitCode` if it carries one, else 1 (failure at run time). */
export function exitCodeOf(err: unknown): number {
  const code = (err as { exitCode?: unknown } | null)?.exitCode;
  return typeof code === 'number' && Number.isInteger(code) && code > 0 && code < 126 ? code : EXIT.FAILURE;
}

// ---- options ----

/** string: one value (the last one given wins); boolean: a switch (--no-NAME turns it off); list: repeatable */
export type OptionKind = 'string' | 'boolean' | 'list';

export interface OptionSpec {
  kind: OptionKind;
  short?: string;
  /** what the value is, for messages: FILE, N, HOST:PORT */
  value?: string;
}

export type OptionTable = Record<string, OptionSpec>;

type ValueOf<S extends OptionSpec> = S['kind'] extends 'boolean' ? boolean : S['kind'] extends 'list' ? string[] : string;
export type OptionValues<T extends OptionTable> = { [K in keyof T]?: ValueOf<T[K]> };

export interface ParsedCommandLine<T extends OptionTable> {
  /** -h or --help appeared (before any `--`): the command prints its help and nothing else is checked */
  help: boolean;
  values: OptionValues<T>;
  positionals: string[];
}

/** Edit distance with adjacent transpositions (optimal string alignment): "kye" is 1 from "key". */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

/** " (did you mean --x?)" for a mistyped or shortened option name, or '' */
function suggestion(name: string, table: OptionTable): string {
  const names = Object.keys(table);
  const longer = names.filter((k) => k.startsWith(name));
  if (longer.length > 0 && longer.length <= 3) return ` (did you mean ${longer.map((k) => `--${k}`).join(' or ')}?)`;
  const best = names.map((k) => ({ k, d: distance(name, k) })).sort((x, y) => x.d - y.d)[0];
  return best && best.d <= Math.max(1, Math.floor(name.length / 3)) ? ` (did you mean --${best.k}?)` : '';
}

/**
 * Parses `argv` against `table`. Every mistake is a UsageError naming the option: an
 * unknown option (with the nearest known one), a missing value, a value given to a switch.
 * `-h`/`--help` anywhere before `--` wins over everything else.
 */
export function parseCommandLine<T extends OptionTable>(argv: string[], table: T): ParsedCommandLine<T> {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {};
  for (const [name, spec] of Object.entries(table)) {
    options[name] = { type: spec.kind === 'boolean' ? 'boolean' : 'string', ...(spec.short ? { short: spec.short } : {}) };
  }
  const { tokens } = parseArgs({ args: argv, options, strict: false, allowPositionals: true, tokens: true });
  const terminator = tokens.findIndex((t) => t.kind === 'option-terminator');
  const beforeTerminator = terminator < 0 ? tokens : tokens.slice(0, terminator);
  if (beforeTerminator.some((t) => t.kind === 'option' && (t.rawName === '--help' || t.rawName === '-h'))) {
    return { help: true, values: {}, positionals: [] };
  }
  const values: Record<string, string | boolean | string[]> = {};
  const positionals: string[] = [];
  for (const t of tokens) {
    if (t.kind === 'positional') { positionals.push(t.value); continue; }
    if (t.kind !== 'option') continue;
    const isShort = !t.rawName.startsWith('--');
    // parseArgs names a known short option by its long name, an unknown one by its letter
    const name = isShort && table[t.name]?.short !== t.rawName.slice(1) ? undefined : t.name;
    const negated = !isShort && !Object.hasOwn(table, t.name) && t.name.startsWith('no-') && table[t.name.slice(3)]?.kind === 'boolean';
    if (negated) {
      if (t.value !== undefined) throw new UsageError(`${t.rawName} takes no value`);
      values[t.name.slice(3)] = false;
      continue;
    }
    const spec = name === undefined || !Object.hasOwn(table, name) ? undefined : table[name];
    if (name === undefined || spec === undefined) throw new UsageError(`unknown option ${t.rawName}${isShort ? '' : suggestion(t.name, table)}`);
    if (spec.kind === 'boolean') {
      if (t.value !== undefined) throw new UsageError(`${t.rawName} takes no value (got ${JSON.stringify(t.value)})`);
      values[name] = true;
      continue;
    }
    const what = spec.value ?? 'VALUE';
    // `--key --force`: Node would take "--force" as the key file; we say what is missing instead
    if (t.value === undefined || (!t.inlineValue && t.value.startsWith('-') && t.value !== '-')) {
      const next = t.value === undefined ? '' : ` (found ${t.value}; write ${t.rawName}=${t.value} if that is the value)`;
      throw new UsageError(`${t.rawName} needs a value ${what}${next}`);
    }
    if (spec.kind === 'list') values[name] = [...((values[name] as string[] | undefined) ?? []), t.value];
    else values[name] = t.value;
  }
  return { help: false, values: values as OptionValues<T>, positionals };
}

/** Rejects more or fewer positional arguments than the command takes. */
export function expectPositionals(positionals: string[], min: number, max: number, what: string): void {
  if (positionals.length < min) throw new UsageError(`missing ${what}`);
  if (positionals.length > max) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[max])}${max === 0 ? ' (this command takes none)' : ` (only ${what})`}`);
}

/**
 * A duration given in seconds (`1`, `0.5`), checked against min..max; returns milliseconds.
 * `origin` names where the text came from (a flag, a variable, a config file line).
 */
export function secondsIn(text: string, origin: string, min: number, max: number): number {
  const s = /^\d{1,7}(\.\d{1,3})?$/.test(text) ? Number(text) : NaN;
  if (!(s >= min && s <= max)) throw new UsageError(`${origin} must be a number of seconds in ${min}..${max}, got ${JSON.stringify(text)}`);
  return Math.round(s * 1000);
}

/** An integer given as text, checked against min..max; `origin` as for secondsIn. */
export function integerIn(text: string, origin: string, min: number, max: number): number {
  if (!/^\d{1,10}$/.test(text) || Number(text) < min || Number(text) > max) {
    throw new UsageError(`${origin}: must be an integer in ${min}..${max}, got ${JSON.stringify(text)}`);
  }
  return Number(text);
}

/** HOST:PORT, an IPv6 host in brackets ([ADDR]:PORT); `origin` as for secondsIn. */
export function hostPortIn(text: string, origin: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(text) ?? /^([^:[\]]+):(\d{1,5})$/.exec(text);
  if (!m || Number(m[2]) > 65535) throw new UsageError(`${origin}: expected HOST:PORT (IPv6 as [ADDR]:PORT), got ${JSON.stringify(text)}`);
  return { host: m[1]!, port: Number(m[2]) };
}

// ---- output ----

/** The version in our package.json: the nearest one above this file (dist/src/common/ installed, src/common/ in tests). */
export function packageVersion(): string {
  for (let up = '../'; up.length <= 4 * 3; up += '../') {
    let text: string;
    try { text = readFileSync(new URL(`${up}package.json`, import.meta.url), 'utf8'); } catch { continue; }
    const pkg = JSON.parse(text) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  }
  return 'unknown';
}

/** Replaces control characters, so a peer-influenced string (a name, an error text) cannot rewrite the terminal. */
export function printable(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ');
}

function two(n: number): string { return String(n).padStart(2, '0'); }

/** Local wall-clock time with milliseconds, for people: 2026-12-01 21:36:27.123 */
export function formatLocalTime(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}
