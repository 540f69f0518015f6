// Daemon configuration (mpyc-agent up; mpyc-relay serve later) from four places, the
// first that sets an option wins:
//   1. the command line   --log-level debug
//   2. the environment    MPYC_AGENT_LOG_LEVEL=debug       (the program's prefix + the option)
//   3. a config file      {"log-level": "debug"}           (--config FILE or MPYC_AGENT_CONFIG=FILE)
//   4. the command's built-in default
// One name per option everywhere: the long flag's name is the file key, and upper-cased
// with '-' → '_' after the prefix it is the variable. The option's kind (src/common/cli.ts)
// says what each place may hold:
//   string   flag/variable: the text; file: a string, or a number (ports, counts)
//   boolean  flag: --x / --no-x; variable: 1|true|yes|on or 0|false|no|off; file: true/false
//   list     flag: repeated; variable: comma-separated; file: an array (or one value)
// An empty variable counts as unset. Unknown file keys, unknown PREFIX_* variables and
// values of the wrong kind are ConfigErrors (exit 2) naming the file, line:column and key,
// or the variable: a silently ignored typo would be a setting that never applies.
// Commands validate the values themselves (ranges, formats) and name `origin(key)` in their
// messages, so an error points at the flag, variable or file line that set the value.
//
// API:
//   loadConfig(table, {flags, env, envPrefix}) → Config   (reads the file if one is named)
//   config.get(key), config.origin(key), config.filePath, config.changedKeys(newer)
import { readFileSync, statSync } from 'node:fs';
import { UsageError, type OptionTable, type OptionValues } from './cli.js';
import { parseStrictJson, type JsonValue } from '../tools/strict-json.js';

/** a config file is a few lines; anything larger is not one */
export const MAX_CONFIG_BYTES = 1 << 20;

export class ConfigError extends UsageError {
  override name = 'ConfigError';
}

export interface ConfigSources<T extends OptionTable> {
  /** values from the command line (parseCommandLine), without the `config` option itself */
  flags: OptionValues<T>;
  /** the config file named by --config, if any (it wins over the variable) */
  configFlag?: string;
  env: NodeJS.ProcessEnv;
  /** e.g. "MPYC_AGENT" */
  envPrefix: string;
}

type Value = string | boolean | string[];
interface Setting { value: Value; origin: string }

export interface Config<T extends OptionTable> {
  /** the config file read, if any */
  readonly filePath: string | undefined;
  get<K extends keyof T & string>(key: K): OptionValues<T>[K];
  /** where the value came from: "--udp-port", "MPYC_AGENT_UDP_PORT", "agent.json:4:16: udp-port", or "default" */
  origin(key: keyof T & string): string;
  /** keys whose value differs in `newer` (a reload of the same sources) */
  changedKeys(newer: Config<T>): string[];
}

export function envName(prefix: string, key: string): string {
  return `${prefix}_${key.toUpperCase().replace(/-/g, '_')}`;
}

const TRUE_WORDS = ['1', 'true', 'yes', 'on'];
const FALSE_WORDS = ['0', 'false', 'no', 'off'];

function fromEnv(kind: OptionTable[string]['kind'], text: string, name: string): Value {
  if (kind === 'string') return text;
  if (kind === 'list') return text.split(',').map((s) => s.trim()).filter(Boolean);
  const t = text.trim().toLowerCase();
  if (TRUE_WORDS.includes(t)) return true;
  if (FALSE_WORDS.includes(t)) return false;
  throw new ConfigError(`${name}: expected ${TRUE_WORDS.join('|')} or ${FALSE_WORDS.join('|')}, got ${JSON.stringify(text)}`);
}

function describe(v: JsonValue): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)}`;
}

function fromFile(kind: OptionTable[string]['kind'], v: JsonValue, where: string): Value {
  const scalar = (x: JsonValue): string | undefined => (typeof x === 'string' ? x : typeof x === 'number' ? String(x) : undefined);
  if (kind === 'boolean') {
    if (typeof v !== 'boolean') throw new ConfigError(`${where}: expected true or false, found ${describe(v)}`);
    return v;
  }
  if (kind === 'string') {
    const s = scalar(v);
    if (s === undefined) throw new ConfigError(`${where}: expected a string or a number, found ${describe(v)}`);
    return s;
  }
  const items = Array.isArray(v) ? v : [v];
  return items.map((x, i) => {
    const s = scalar(x);
    if (s === undefined) throw new ConfigError(`${where}${Array.isArray(v) ? `[${i}]` : ''}: expected strings or numbers, found ${describe(x)}`);
    return s;
  });
}

function readConfigFile(path: string, table: OptionTable): Map<string, Setting> {
  let text: string;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new ConfigError(`${path}: not a regular file`);
    if (st.size > MAX_CONFIG_BYTES) throw new ConfigError(`${path}: larger than ${MAX_CONFIG_BYTES} bytes; not a config file`);
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(`${path}: cannot read config file (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  const parsed = parseStrictJson(text);
  if (!parsed.ok) throw new ConfigError(`${path}:${parsed.line}:${parsed.col}: JSON syntax error: ${parsed.message}`);
  const doc = parsed.value;
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new ConfigError(`${path}: expected a JSON object {"option": value, ...}, found ${describe(doc)}`);
  const out = new Map<string, Setting>();
  for (const [key, v] of Object.entries(doc)) {
    const pos = parsed.positions.get(key);
    const where = `${path}${pos ? `:${pos.line}:${pos.col}` : ''}: ${key}`;
    const spec = table[key];
    if (!spec) throw new ConfigError(`${where}: unknown option (known: ${Object.keys(table).join(', ')})`);
    out.set(key, { value: fromFile(spec.kind, v, where), origin: where });
  }
  return out;
}

/** Merges flags > environment > config file for every option of `table` (defaults stay with the command). */
export function loadConfig<T extends OptionTable>(table: T, src: ConfigSources<T>): Config<T> {
  const configVar = envName(src.envPrefix, 'config');
  const known = new Set(Object.keys(table).map((k) => envName(src.envPrefix, k)));
  for (const name of Object.keys(src.env)) {
    if (name.startsWith(`${src.envPrefix}_`) && name !== configVar && !known.has(name)) {
      throw new ConfigError(`${name}: unknown variable (known: ${[...known, configVar].join(', ')})`);
    }
  }
  const filePath = src.configFlag ?? (src.env[configVar] || undefined);
  const file = filePath !== undefined ? readConfigFile(filePath, table) : new Map<string, Setting>();
  const settings = new Map<string, Setting>();
  for (const [key, spec] of Object.entries(table)) {
    const flag = (src.flags as Record<string, Value | undefined>)[key];
    const name = envName(src.envPrefix, key);
    const envText = src.env[name];
    if (flag !== undefined) settings.set(key, { value: flag, origin: `--${key}` });
    else if (envText !== undefined && envText !== '') settings.set(key, { value: fromEnv(spec.kind, envText, name), origin: name });
    else if (file.has(key)) settings.set(key, file.get(key)!);
  }
  const config: Config<T> = {
    filePath,
    get: (key) => settings.get(key)?.value as OptionValues<T>[typeof key],
    origin: (key) => settings.get(key)?.origin ?? 'default',
    changedKeys: (newer) => Object.keys(table).filter((k) => JSON.stringify(config.get(k)) !== JSON.stringify(newer.get(k))),
  };
  return config;
}
