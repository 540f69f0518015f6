// The session file: one JSON document, public information only, identical for every
// party (docs/session-file.md). Version 1:
//   { "version": 1,
//     "basePort": 11365,                              optional, MPyC -B
//     "relays": ["KEY@host:udpPort/httpPort", ...],   or {publicKey, host, udpPort, httpPort?}
//     "parties": [{"publicKey": KEY, "name": "alice"}, ...] }   array index = MPyC pid
// Validation is strict (unknown fields, duplicate JSON keys, duplicate party keys are
// errors) because a silently ignored typo here means a party that never connects.
import { readFileSync, statSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import type { PartyEntry, RelayAddress } from './types.js';
import { parseStrictJson, type JsonObject, type JsonValue, type Position } from '../tools/strict-json.js';
import { InputFileError } from '../common/cli.js';
import { isKeyText } from '../common/peer-key.js';

export const SESSION_VERSION = 1;
export const DEFAULT_BASE_PORT = 11365;
/** a session file is small; anything larger is not one */
export const MAX_SESSION_BYTES = 1 << 20;
export const MAX_PARTIES = 1000;
export const MAX_NAME_LENGTH = 64;

export interface Session {
  version: number;
  basePort: number;
  relays: RelayAddress[];
  parties: PartyEntry[];
}

/** One error class for every session-file problem (exit 3); `path` is the JSON path ('' = whole file). */
export class SessionFileError extends InputFileError {
  override name = 'SessionFileError';
  constructor(readonly source: string, readonly path: string, readonly detail: string, readonly position?: Position) {
    super(`${source}${position ? `:${position.line}:${position.col}` : ''}: ${path ? `${path}: ` : ''}${detail}`);
  }
}

// ---- keys and relay addresses ----

/** Why `text` is not a public key (44-char base64 of 32 bytes, canonical), or null if it is one. */
export function keyProblem(text: string): string | null {
  if (text.length !== 44) return `not a public key: 44 base64 characters expected, got ${text.length}`;
  if (!isKeyText(text)) return 'not a public key: not 44-char base64 of 32 bytes (A-Z a-z 0-9 + /, ending in one \'=\')';
  // 32 bytes use 256 of the 258 bits of 43 characters; the 2 spare bits must be zero or the
  // same key has several spellings (and two parties could differ only in spelling).
  if (Buffer.from(text, 'base64').toString('base64') !== text) return 'not a public key: non-canonical base64 (last character before \'=\' has spare bits set)';
  return null;
}

const HOSTNAME_RE = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

function hostProblem(host: string): string | null {
  if (isIPv4(host) || isIPv6(host)) return null;
  if (/^[0-9.]+$/.test(host)) return `bad IPv4 address ${JSON.stringify(host)}`;
  if (!HOSTNAME_RE.test(host)) return `bad host name ${JSON.stringify(host)}`;
  return null;
}

function portProblem(text: string, what: string): string | null {
  if (!/^\d{1,5}$/.test(text) || Number(text) < 1 || Number(text) > 65535) return `${what} ${JSON.stringify(text)} is not a port 1..65535`;
  return null;
}

/** before the HTTP port in a relay address: that port speaks TLS */
const TLS_PREFIX = 'https:';

/**
 * Parses `KEY@host:udpPort[/httpPort]` or `KEY@host:udpPort/https:httpPort` (the HTTP port
 * speaks TLS: the WebSocket fallback is wss://), the format mpyc-relay prints as
 * `relayAddress` (src/relay/serve.ts); an IPv6 host is in brackets, `KEY@[::1]:3478/8080`.
 * Returns the address (host without brackets) or the reason it is not one.
 */
export function parseRelayAddress(text: string): { ok: true; value: RelayAddress } | { ok: false; error: string } {
  const err = (e: string): { ok: false; error: string } => ({ ok: false, error: e });
  const at = text.indexOf('@');
  if (at < 0) return err('relay address must be KEY@host:udpPort/httpPort (no \'@\')');
  const key = text.slice(0, at);
  const kp = keyProblem(key);
  if (kp) return err(`relay key: ${kp}`);
  let rest = text.slice(at + 1);
  let host: string;
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0) return err('relay address: \'[\' without \']\' around the IPv6 address');
    host = rest.slice(1, close);
    if (!isIPv6(host)) return err(`relay address: ${JSON.stringify(host)} in brackets is not an IPv6 address`);
    rest = rest.slice(close + 1);
    if (!rest.startsWith(':')) return err('relay address: expected \':udpPort\' after the IPv6 address');
  } else {
    const colon = rest.indexOf(':');
    if (colon < 0) return err('relay address: missing \':udpPort\'');
    host = rest.slice(0, colon);
    if (host === '') return err('relay address: empty host');
    if (host.includes('[') || host.includes(']')) return err('relay address: misplaced bracket');
    rest = rest.slice(colon);
    if (rest.slice(1).split('/')[0]!.includes(':')) return err('relay address: an IPv6 host must be written in brackets, e.g. KEY@[::1]:3478/8080');
  }
  const hp = hostProblem(host);
  if (hp) return err(`relay address: ${hp}`);
  const ports = rest.slice(1).split('/');
  if (ports.length > 2) return err('relay address: too many \'/\' (KEY@host:udpPort/httpPort)');
  const up = portProblem(ports[0]!, 'UDP port');
  if (up) return err(`relay address: ${up}`);
  const value: RelayAddress = { publicKey: key, host, udpPort: Number(ports[0]) };
  if (ports.length === 2) {
    const tls = ports[1]!.startsWith(TLS_PREFIX);
    const httpPort = tls ? ports[1]!.slice(TLS_PREFIX.length) : ports[1]!;
    const hpp = portProblem(httpPort, tls ? 'HTTPS port' : 'HTTP port');
    if (hpp) return err(`relay address: ${hpp}${!tls && httpPort.includes(':') ? ' (TLS is written /https:PORT)' : ''}`);
    value.httpPort = Number(httpPort);
    if (tls) value.tls = true;
  }
  return { ok: true, value };
}

/** The inverse of parseRelayAddress, identical to mpyc-relay's printed `relayAddress`. */
export function formatRelayAddress(r: RelayAddress): string {
  const host = r.host.includes(':') ? `[${r.host}]` : r.host;
  return `${r.publicKey}@${host}:${r.udpPort}${r.httpPort !== undefined ? `/${r.tls ? TLS_PREFIX : ''}${r.httpPort}` : ''}`;
}

// ---- the document ----

function typeName(v: JsonValue): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

function isObject(v: JsonValue | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export interface ParseOptions {
  /**
   * Fewest parties accepted (default 2, what a computation needs). The `mpyc-agent session`
   * editing commands pass 0 so a file can be created first and parties added one by one.
   */
  minParties?: number;
}

/** Parses and validates a session file; throws SessionFileError saying what and where. */
export function parseSessionFile(text: string, sourceName: string, opts: ParseOptions = {}): Session {
  const minParties = opts.minParties ?? 2;
  if (text.length > MAX_SESSION_BYTES) throw new SessionFileError(sourceName, '', `larger than ${MAX_SESSION_BYTES} bytes; not a session file`);
  const parsed = parseStrictJson(text);
  if (!parsed.ok) throw new SessionFileError(sourceName, '', `JSON syntax error: ${parsed.message}`, { line: parsed.line, col: parsed.col });
  const fail = (path: string, detail: string): never => { throw new SessionFileError(sourceName, path, detail, parsed.positions.get(path)); };
  const doc = parsed.value;
  if (!isObject(doc)) return fail('', `expected a JSON object, found ${typeName(doc)}`);
  const allowed = ['version', 'basePort', 'relays', 'parties'];
  for (const k of Object.keys(doc)) if (!allowed.includes(k)) fail(k, `unknown field (allowed: ${allowed.join(', ')})`);

  if (doc.version === undefined) fail('version', `missing (write "version": ${SESSION_VERSION})`);
  if (doc.version !== SESSION_VERSION) fail('version', `unsupported version ${JSON.stringify(doc.version)}; this agent reads version ${SESSION_VERSION}`);

  let basePort = DEFAULT_BASE_PORT;
  if (doc.basePort !== undefined) {
    if (typeof doc.basePort !== 'number' || !Number.isInteger(doc.basePort) || doc.basePort < 1 || doc.basePort > 65535) {
      fail('basePort', `must be an integer port 1..65535, found ${JSON.stringify(doc.basePort)}`);
    }
    basePort = doc.basePort as number;
  }

  const relaysV = doc.relays;
  if (relaysV === undefined) fail('relays', 'missing (at least one relay, "KEY@host:udpPort/httpPort")');
  if (!Array.isArray(relaysV)) return fail('relays', `expected an array, found ${typeName(relaysV!)}`);
  if (relaysV.length === 0) fail('relays', 'at least one relay is required');
  const relays: RelayAddress[] = relaysV.map((r, i) => parseRelayEntry(r, `relays[${i}]`, fail));
  const relaySeen = new Map<string, number>();
  relays.forEach((r, i) => {
    const prev = relaySeen.get(r.publicKey);
    if (prev !== undefined) fail(`relays[${i}]`, `same relay key as relays[${prev}]`);
    relaySeen.set(r.publicKey, i);
  });

  const partiesV = doc.parties;
  if (partiesV === undefined) fail('parties', 'missing (the parties in MPyC index order)');
  if (!Array.isArray(partiesV)) return fail('parties', `expected an array, found ${typeName(partiesV!)}`);
  if (partiesV.length < minParties) fail('parties', `at least ${minParties} parties are required, found ${partiesV.length}${minParties === 2 ? ' (add them with: mpyc-agent session add)' : ''}`);
  if (partiesV.length > MAX_PARTIES) fail('parties', `at most ${MAX_PARTIES} parties, found ${partiesV.length}`);
  if (basePort + Math.max(partiesV.length, 1) - 1 > 65535) {
    fail('basePort', `basePort ${basePort} + ${partiesV.length} parties - 1 = ${basePort + partiesV.length - 1} exceeds 65535`);
  }
  const parties: PartyEntry[] = [];
  const keySeen = new Map<string, number>();
  const nameSeen = new Map<string, number>();
  partiesV.forEach((p, i) => {
    const path = `parties[${i}]`;
    if (!isObject(p)) return fail(path, `expected an object {"publicKey": ..., "name": ...}, found ${typeName(p)}`);
    for (const k of Object.keys(p)) if (k !== 'publicKey' && k !== 'name') fail(`${path}.${k}`, 'unknown field (allowed: publicKey, name)');
    if (p.publicKey === undefined) fail(`${path}.publicKey`, 'missing');
    if (typeof p.publicKey !== 'string') return fail(`${path}.publicKey`, `expected a string, found ${typeName(p.publicKey!)}`);
    const kp = keyProblem(p.publicKey);
    if (kp) fail(`${path}.publicKey`, kp);
    const prev = keySeen.get(p.publicKey);
    if (prev !== undefined) fail(`${path}.publicKey`, `duplicate key: same as parties[${prev}].publicKey`);
    if (relaySeen.has(p.publicKey)) fail(`${path}.publicKey`, `same key as relays[${relaySeen.get(p.publicKey)}]`);
    keySeen.set(p.publicKey, i);
    const entry: PartyEntry = { index: i, publicKey: p.publicKey };
    if (p.name !== undefined) {
      if (typeof p.name !== 'string') return fail(`${path}.name`, `expected a string, found ${typeName(p.name)}`);
      // eslint-disable-next-line no-control-regex
      if (p.name.length === 0 || p.name.length > MAX_NAME_LENGTH || /[\u0000-\u001f\u007f]/.test(p.name)) {
        fail(`${path}.name`, `must be 1..${MAX_NAME_LENGTH} characters without control characters`);
      }
      const prevName = nameSeen.get(p.name);
      if (prevName !== undefined) fail(`${path}.name`, `duplicate name ${JSON.stringify(p.name)}: same as parties[${prevName}].name`);
      nameSeen.set(p.name, i);
      entry.name = p.name;
    }
    parties.push(entry);
    return undefined;
  });
  return { version: SESSION_VERSION, basePort, relays, parties };
}

function parseRelayEntry(v: JsonValue, path: string, fail: (path: string, detail: string) => never): RelayAddress {
  if (typeof v === 'string') {
    const r = parseRelayAddress(v);
    if (!r.ok) return fail(path, r.error);
    return r.value;
  }
  if (!isObject(v)) return fail(path, `expected "KEY@host:udpPort/httpPort" or an object, found ${typeName(v)}`);
  const allowed = ['publicKey', 'host', 'udpPort', 'httpPort', 'tls'];
  for (const k of Object.keys(v)) if (!allowed.includes(k)) fail(`${path}.${k}`, `unknown field (allowed: ${allowed.join(', ')})`);
  if (typeof v.publicKey !== 'string') return fail(`${path}.publicKey`, v.publicKey === undefined ? 'missing' : `expected a string, found ${typeName(v.publicKey)}`);
  const kp = keyProblem(v.publicKey);
  if (kp) fail(`${path}.publicKey`, kp);
  if (typeof v.host !== 'string') return fail(`${path}.host`, v.host === undefined ? 'missing' : `expected a string, found ${typeName(v.host)}`);
  const host = v.host.startsWith('[') && v.host.endsWith(']') ? v.host.slice(1, -1) : v.host;
  const hp = hostProblem(host);
  if (hp) fail(`${path}.host`, hp);
  const port = (k: 'udpPort' | 'httpPort'): number => {
    const p = v[k];
    if (typeof p !== 'number' || !Number.isInteger(p) || p < 1 || p > 65535) return fail(`${path}.${k}`, `must be an integer port 1..65535, found ${p === undefined ? 'nothing' : JSON.stringify(p)}`);
    return p;
  };
  const r: RelayAddress = { publicKey: v.publicKey, host, udpPort: port('udpPort') };
  if (v.httpPort !== undefined) r.httpPort = port('httpPort');
  if (v.tls !== undefined) {
    if (typeof v.tls !== 'boolean') return fail(`${path}.tls`, `expected true or false, found ${typeName(v.tls)}`);
    if (v.tls && r.httpPort === undefined) return fail(`${path}.tls`, 'TLS is for the HTTP port: give httpPort too');
    if (v.tls) r.tls = true;
  }
  return r;
}

/** Reads and validates a session file from disk. */
export function loadSessionFile(path: string, opts: ParseOptions = {}): Session {
  let text: string;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new SessionFileError(path, '', 'not a regular file');
    if (st.size > MAX_SESSION_BYTES) throw new SessionFileError(path, '', `larger than ${MAX_SESSION_BYTES} bytes; not a session file`);
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if (e instanceof SessionFileError) throw e;
    throw new SessionFileError(path, '', `cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  return parseSessionFile(text, path, opts);
}

/** This party's index, found by its own public key; throws if the key is not a party's. */
export function findOwnIndex(session: Pick<Session, 'parties'>, publicKeyB64: string, sourceName = 'session file'): number {
  const p = session.parties.find((q) => q.publicKey === publicKeyB64);
  if (p) return p.index;
  throw new SessionFileError(sourceName, 'parties',
    `own key ${publicKeyB64} is not in the session file; add it with: mpyc-agent session add ${sourceName === 'session file' ? 'FILE' : sourceName} --pubkey ${publicKeyB64}`);
}

/**
 * The canonical text of a session: relays as address strings, one relay or party per line
 * (easy to read and to diff when parties are added), final newline.
 */
export function serializeSession(s: { basePort: number; relays: RelayAddress[]; parties: Pick<PartyEntry, 'publicKey' | 'name'>[] }): string {
  const list = (items: string[]): string => (items.length === 0 ? '[]' : `[\n${items.map((x) => `    ${x}`).join(',\n')}\n  ]`);
  const party = (p: Pick<PartyEntry, 'publicKey' | 'name'>): string =>
    `{ "publicKey": ${JSON.stringify(p.publicKey)}${p.name !== undefined ? `, "name": ${JSON.stringify(p.name)}` : ''} }`;
  return `{\n  "version": ${SESSION_VERSION},\n  "basePort": ${s.basePort},\n` +
    `  "relays": ${list(s.relays.map((r) => JSON.stringify(formatRelayAddress(r))))},\n` +
    `  "parties": ${list(s.parties.map(party))}\n}\n`;
}

/** The MPyC command line party `index` runs (with -B only when the base is not MPyC's default). */
export function mpycCommand(m: number, index: number, basePort: number, script = 'demo.py'): string {
  return `python ${script} -M${m} -I ${index}${basePort !== DEFAULT_BASE_PORT ? ` -B ${basePort}` : ''}`;
}
