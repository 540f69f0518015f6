// `mpyc-agent session create|add|show`: edit and inspect a session file
// (docs/session-file.md). Every write re-validates the complete new text before it
// replaces the file, and replaces it atomically (temporary file in the same directory,
// fsync, rename), so a crash or a bad argument never leaves a broken session file.
import { closeSync, existsSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, basename, join } from 'node:path';
import {
  DEFAULT_BASE_PORT, SessionFileError, keyProblem, loadSessionFile, mpycCommand, parseRelayAddress,
  parseSessionFile, serializeSession, formatRelayAddress, type Session,
} from './session-file.js';
import { readKeyFile } from '../common/keys.js';
import { PeerKey } from '../common/peer-key.js';
import { EXIT, EXIT_CODES_HELP, UsageError, exitCodeOf, expectPositionals, parseCommandLine, type OptionTable } from '../common/cli.js';
import type { RelayAddress } from './types.js';

export interface SessionCmdIO {
  out(s: string): void;
  err(s: string): void;
}

const defaultIO: SessionCmdIO = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) };

const HELP_MAIN = `mpyc-agent session — create and inspect the session file (docs/session-file.md)

Usage:
  mpyc-agent session create FILE --relay ADDR [--relay ADDR ...] [--base-port N] [--force]
  mpyc-agent session add FILE (--key KEYFILE | --pubkey KEY) [--name NAME]
  mpyc-agent session show FILE [--script demo.py]
  mpyc-agent session COMMAND --help

${EXIT_CODES_HELP}`;

/** each subcommand's synopsis, printed with a usage error */
const USAGE: Record<string, string> = {
  create: 'mpyc-agent session create FILE --relay ADDR [--relay ADDR ...] [--base-port N] [--force]',
  add: 'mpyc-agent session add FILE (--key KEYFILE | --pubkey KEY) [--name NAME]',
  show: 'mpyc-agent session show FILE [--script demo.py]',
};

const OPTIONS = {
  create: { relay: { kind: 'list', value: 'ADDR' }, 'base-port': { kind: 'string', value: 'N' }, force: { kind: 'boolean' } },
  add: { key: { kind: 'string', value: 'KEYFILE' }, pubkey: { kind: 'string', value: 'KEY' }, name: { kind: 'string', value: 'NAME' } },
  show: { script: { kind: 'string', value: 'NAME' } },
} as const satisfies Record<string, OptionTable>;

const HELP: Record<string, string> = {
  create: `${USAGE.create}

Creates a session file with the given relays and no parties yet.
  --relay ADDR     KEY@host:udpPort/httpPort as mpyc-relay prints it (IPv6: KEY@[::1]:3478/8080);
                   repeat for failover relays, in order of preference
  --base-port N    MPyC's base port (-B), default ${DEFAULT_BASE_PORT}
  --force          overwrite an existing FILE
`,
  add: `${USAGE.add}

Appends a party; its MPyC index is its position (0 for the first party added).
  --key KEYFILE    take the public key from this party's key file (mpyc-agent keygen)
  --pubkey KEY     the party's public key, 44 base64 characters (as keygen printed it)
  --name NAME      optional name shown in logs and status
`,
  show: `${USAGE.show}

Validates FILE and prints the relays and, per party, its index, name, key and the MPyC
command line it runs. Exits 3 when FILE is invalid or has fewer than 2 parties (as
\`mpyc-agent up\` would).
  --script NAME    the MPyC program in the printed command lines (default demo.py)
`,
};

/** Writes `text` to `path` atomically: temporary file in the same directory, fsync, rename. */
export function writeFileAtomic(path: string, text: string): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  let fd: number | undefined;
  try {
    fd = openSync(tmp, 'wx', 0o644);
    writeSync(fd, text);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    try { unlinkSync(tmp); } catch { /* never created */ }
    throw new SessionFileError(path, '', `cannot write (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
}

/** Serializes, re-validates (so nothing invalid is ever written) and writes atomically. */
function save(path: string, s: Pick<Session, 'basePort' | 'relays' | 'parties'>): void {
  const text = serializeSession(s);
  parseSessionFile(text, path, { minParties: 0 });
  writeFileAtomic(path, text);
}

function create(args: string[], io: SessionCmdIO): number {
  const { help, values, positionals } = parseCommandLine(args, OPTIONS.create);
  if (help) { io.out(HELP.create!); return EXIT.OK; }
  expectPositionals(positionals, 1, 1, 'FILE');
  const file = positionals[0]!;
  const relayArgs = values.relay ?? [];
  if (relayArgs.length === 0) throw new UsageError('at least one --relay KEY@host:udpPort/httpPort is required');
  const relays: RelayAddress[] = relayArgs.map((a, i) => {
    const r = parseRelayAddress(a);
    if (!r.ok) throw new UsageError(`--relay #${i + 1} ${JSON.stringify(a)}: ${r.error}`);
    return r.value;
  });
  let basePort = DEFAULT_BASE_PORT;
  if (values['base-port'] !== undefined) {
    const v = values['base-port'];
    if (!/^\d{1,5}$/.test(v) || Number(v) < 1 || Number(v) > 65535) throw new UsageError(`--base-port ${JSON.stringify(v)}: not a port 1..65535`);
    basePort = Number(v);
  }
  if (existsSync(file) && !values.force) throw new SessionFileError(file, '', 'already exists; refusing to overwrite (use --force)');
  save(file, { basePort, relays, parties: [] });
  io.out(`${file}: created with ${relays.length} relay${relays.length > 1 ? 's' : ''}, base port ${basePort}; add parties in index order with: mpyc-agent session add ${file} --pubkey KEY --name NAME\n`);
  return 0;
}

function add(args: string[], io: SessionCmdIO): number {
  const { help, values, positionals } = parseCommandLine(args, OPTIONS.add);
  if (help) { io.out(HELP.add!); return EXIT.OK; }
  expectPositionals(positionals, 1, 1, 'FILE');
  if ((values.key === undefined) === (values.pubkey === undefined)) throw new UsageError('give exactly one of --key KEYFILE or --pubkey KEY');
  const file = positionals[0]!;
  let publicKey: string;
  if (values.key !== undefined) {
    const kp = readKeyFile(values.key, { keygenCommand: 'mpyc-agent keygen' });
    kp.privateKey.fill(0);
    publicKey = PeerKey.fromBytes(kp.publicKey).text;
  } else {
    publicKey = values.pubkey!.trim();
    const kp = keyProblem(publicKey);
    if (kp) throw new UsageError(`--pubkey: ${kp}`);
  }
  const s = loadSessionFile(file, { minParties: 0 });
  const dup = s.parties.find((p) => p.publicKey === publicKey);
  if (dup) throw new SessionFileError(file, `parties[${dup.index}]`, `this key is already party ${dup.index}${dup.name ? ` (${dup.name})` : ''}`);
  const parties = [...s.parties, { index: s.parties.length, publicKey, ...(values.name !== undefined ? { name: values.name } : {}) }];
  save(file, { basePort: s.basePort, relays: s.relays, parties });
  const idx = parties.length - 1;
  io.out(`${file}: added party ${idx}${values.name ? ` (${values.name})` : ''}; it runs: ${mpycCommand(parties.length, idx, s.basePort)} (with -M${parties.length} as long as no more parties are added)\n`);
  return 0;
}

function show(args: string[], io: SessionCmdIO): number {
  const { help, values, positionals } = parseCommandLine(args, OPTIONS.show);
  if (help) { io.out(HELP.show!); return EXIT.OK; }
  expectPositionals(positionals, 1, 1, 'FILE');
  const file = positionals[0]!;
  const s = loadSessionFile(file, { minParties: 0 });
  const m = s.parties.length;
  const lines = [`${file}: version ${s.version}, ${m} parties, base port ${s.basePort}`];
  s.relays.forEach((r, i) => lines.push(`relay ${i}${i === 0 ? ' (home)' : ' (failover)'}: ${formatRelayAddress(r)}${r.httpPort === undefined ? '  (no WebSocket fallback)' : ''}`));
  const nameWidth = Math.max(4, ...s.parties.map((p) => (p.name ?? '-').length));
  for (const p of s.parties) {
    lines.push(`party ${p.index}  ${(p.name ?? '-').padEnd(nameWidth)}  ${p.publicKey}  ${mpycCommand(m, p.index, s.basePort, values.script ?? 'demo.py')}`);
  }
  if (m < 2) lines.push(`incomplete: ${m} part${m === 1 ? 'y' : 'ies'}; a computation needs at least 2 (mpyc-agent session add ${file} ...)`);
  io.out(lines.join('\n') + '\n');
  return m < 2 ? EXIT.BAD_FILE : EXIT.OK;
}

/** Runs `mpyc-agent session ARGV...`; returns the exit code (EXIT in src/common/cli.ts). */
export async function runSessionCommand(argv: string[], io: SessionCmdIO = defaultIO): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    if (!cmd || cmd === '-h' || cmd === '--help' || cmd === 'help') { io.out(HELP_MAIN); return cmd ? EXIT.OK : EXIT.USAGE; }
    if (cmd === 'create') return create(rest, io);
    if (cmd === 'add') return add(rest, io);
    if (cmd === 'show') return show(rest, io);
    throw new UsageError(`unknown session command ${JSON.stringify(cmd)} (create, add, show)`);
  } catch (e) {
    io.err(`mpyc-agent session: ${(e as Error).message}\n`);
    if (e instanceof UsageError) {
      const sub = cmd !== undefined && USAGE[cmd] ? cmd : undefined;
      io.err(sub ? `Usage: ${USAGE[sub]}\nTry: mpyc-agent session ${sub} --help\n` : 'Try: mpyc-agent session --help\n');
    }
    return exitCodeOf(e);
  }
}
