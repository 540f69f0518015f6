// `mpyc-agent invite create` and `mpyc-agent join`: a session without hand-collected keys
// (docs/agent.md "Starting a session from an invite", docs/protocol/lobby.md). The creator
// opens a lobby on the relay and shares the invite; every party (the creator too) joins;
// each ends with the same session file and fingerprint, and with --up runs the agent.
import { existsSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { userInfo, hostname } from 'node:os';
import { readKeyFile, writeKeyFile } from '../common/keys.js';
import { PeerKey } from '../common/peer-key.js';
import { DEFAULT_BASE_PORT, MAX_PARTIES, loadSessionFile, mpycCommand, parseRelayAddress } from './session-file.js';
import { writeFileAtomic } from './session-cmd.js';
import { EXIT, UsageError, exitCodeOf, expectPositionals, parseCommandLine } from '../common/cli.js';
import { DEFAULT_KEY_FILE, USAGE } from './usage.js';
import { runUp } from './up.js';
import { LOBBY_ID_LEN, SECRET_LEN, decodeInvite, encodeInvite, inviteLink, inviteProblem, type Invite } from '../lobby/invite.js';
import { LobbyKeys } from '../lobby/keys.js';
import { LobbyClient } from '../lobby/client.js';
import { joinLobby, LobbyJoinError, type Progress } from '../lobby/join.js';
import { nameProblem } from '../lobby/records.js';
import { OP_CREATE, STATUS } from '../lobby/wire.js';
import type { Roster } from '../lobby/roster.js';

export interface InviteCmdIO { out(s: string): void; err(s: string): void }
const defaultIO: InviteCmdIO = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) };

const CREATE_OPTIONS = {
  relay: { kind: 'string', value: 'ADDR' }, parties: { kind: 'string', value: 'M' }, name: { kind: 'string', value: 'NAME' },
  'base-port': { kind: 'string', value: 'N' }, qr: { kind: 'boolean' }, json: { kind: 'boolean' },
} as const;
const JOIN_OPTIONS = {
  name: { kind: 'string', value: 'NAME' }, key: { kind: 'string', value: 'FILE' }, 'create-key': { kind: 'boolean' }, out: { kind: 'string', value: 'FILE' },
  force: { kind: 'boolean' }, up: { kind: 'boolean' }, timeout: { kind: 'string', value: 'S' },
} as const;

export const INVITE_HELP = `mpyc-agent invite create --relay ADDR --parties M [--name NAME] [--base-port N] [--qr] [--json]

Opens a lobby for M parties on the relay and prints the invite to send them: a string
(MPYC...), the same as a link (mpyc:MPYC...), and with --qr a QR code of the string.
Whoever holds the invite can join while seats are free: share it only with the parties.
Every party, you too, then runs: mpyc-agent join INVITE
  --relay ADDR     KEY@host:udpPort/httpPort as mpyc-relay prints it (the lobby uses the HTTP port;
                   a relay with TLS prints KEY@host:udpPort/https:PORT: lobby over https, and
                   the session file the parties get says so; a private CA is trusted through
                   NODE_EXTRA_CA_CERTS=ca.pem on every party)
  --parties M      number of parties, 2..${MAX_PARTIES} (the relay may allow fewer; default limit 64)
  --name NAME      a name for the session, shown to every party when they join
  --base-port N    MPyC's base port (-B) in the session file (default ${DEFAULT_BASE_PORT})
  --qr             also print a QR code of the invite (for a phone)
  --json           print {"invite","link","parties","expiresInS"} instead of the text
The lobby lives on the relay for an hour (the relay's --lobby-ttl).
`;

export const JOIN_HELP = `mpyc-agent join INVITE [--name NAME] [--key FILE] [--create-key] [--out FILE] [--force]
                     [--timeout S] [--up [-- UP-OPTIONS...]]

Joins the lobby of INVITE (the MPYC... string or the mpyc: link), waits until every party
has joined, checks that all of them agreed on the same roster, and writes the session file.
Prints the roster and a fingerprint: read it aloud to each other, it must be the same on
every screen.
  --name NAME      your name in the session (default: your login name, ${JSON.stringify(defaultName())})
  --key FILE       your private key (default ./${DEFAULT_KEY_FILE})
  --create-key     create the key file if it does not exist (mode 0600)
  --out FILE       where to write the session file (default ./session.json)
  --force          overwrite FILE even if it holds a different session
  --timeout S      give up after S seconds (default: when the lobby expires)
  --up             then start the agent at once (as mpyc-agent up FILE --key KEYFILE);
                   options after -- go to up, e.g. -- --local-base 21000 --control a.sock
Joining again with the same key is harmless: it finds its entry and ends with the same file.
Exit codes: 0 session written (or unchanged); 1 the lobby failed (full, expired, tampering,
relay unreachable, timeout); 2 bad usage, invite or key file.
`;

const DEFAULT_OUT = './session.json';

function defaultName(): string {
  try { return userInfo().username || hostname(); } catch { return hostname(); }
}

class LobbyCmdError extends Error {}

export async function runInviteCommand(cmd: 'invite' | 'join', argv: string[], io: InviteCmdIO = defaultIO): Promise<number> {
  try {
    if (cmd === 'invite') {
      const [sub, ...rest] = argv;
      if (sub === undefined || sub === '-h' || sub === '--help' || sub === 'help') { io.out(INVITE_HELP); return sub ? EXIT.OK : EXIT.USAGE; }
      if (sub !== 'create') throw new UsageError(`unknown invite command ${JSON.stringify(sub)} (create)`);
      return await create(rest, io);
    }
    return await join(argv, io);
  } catch (e) {
    io.err(`mpyc-agent ${cmd}: ${(e as Error).message}\n`);
    if (e instanceof UsageError) {
      io.err(`Usage: ${USAGE[cmd]}\nTry: mpyc-agent ${cmd === 'invite' ? 'invite create' : 'join'} --help\n`);
      return EXIT.USAGE;
    }
    // a lobby that failed (full, expired, tampered with, unreachable) is a failure at run time
    return e instanceof LobbyJoinError || e instanceof LobbyCmdError ? EXIT.FAILURE : exitCodeOf(e);
  }
}

function intArg(v: string | undefined, name: string, min: number, max: number, dflt: number): number {
  if (v === undefined) return dflt;
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) throw new UsageError(`--${name} must be an integer in ${min}..${max}, got ${JSON.stringify(v)}`);
  return Number(v);
}

async function create(argv: string[], io: InviteCmdIO): Promise<number> {
  const { help, values, positionals } = parseCommandLine(argv, CREATE_OPTIONS);
  if (help) { io.out(INVITE_HELP); return EXIT.OK; }
  expectPositionals(positionals, 0, 0, 'nothing');
  if (!values.relay) throw new UsageError('--relay KEY@host:udpPort/httpPort is required (what mpyc-relay printed as relayAddress)');
  const relay = parseRelayAddress(values.relay);
  if (!relay.ok) throw new UsageError(`--relay: ${relay.error}`);
  if (relay.value.httpPort === undefined) throw new UsageError('--relay: the address needs the relay\'s HTTP port (KEY@host:udpPort/httpPort): the lobby is served there');
  if (values.parties === undefined) throw new UsageError('--parties M is required (how many parties will join, you included)');
  const parties = intArg(values.parties, 'parties', 2, MAX_PARTIES, 0);
  const basePort = intArg(values['base-port'], 'base-port', 1, 65535, DEFAULT_BASE_PORT);
  if (values.name !== undefined && nameProblem(values.name)) throw new UsageError(`--name: ${nameProblem(values.name)}`);
  const invite: Invite = {
    relay: { ...relay.value, httpPort: relay.value.httpPort }, relayKey: PeerKey.fromText(relay.value.publicKey, '--relay key'),
    lobbyId: new Uint8Array(randomBytes(LOBBY_ID_LEN)), secret: new Uint8Array(randomBytes(SECRET_LEN)), parties, basePort,
    ...(values.name !== undefined ? { label: values.name } : {}),
  };
  const problem = inviteProblem(invite);
  if (problem) throw new UsageError(problem);
  const keys = new LobbyKeys(invite.relayKey, invite.lobbyId, invite.secret);
  const verifier = keys.verifier;
  keys.wipe();
  const client = new LobbyClient(invite.relay);
  let r;
  try {
    r = await client.send({ op: OP_CREATE, lobbyId: invite.lobbyId, capacity: parties, ttlS: 0, verifier });
  } catch (e) {
    throw new LobbyCmdError((e as Error).message);
  }
  if (r.status !== STATUS.CREATED) throw new LobbyCmdError(createRefusal(r.status, parties));
  const text = encodeInvite(invite);
  invite.secret.fill(0);
  const link = inviteLink(text);
  const minutes = Math.round(r.view.secondsLeft / 60);
  if (values.json) {
    io.out(JSON.stringify({ invite: text, link, parties, expiresInS: r.view.secondsLeft }) + '\n');
    return EXIT.OK;
  }
  const lines = [
    `Invite for a ${parties}-party session${invite.label ? ` ${JSON.stringify(invite.label)}` : ''} on relay ${invite.relay.host} (the lobby is open for ${minutes} min):`,
    '', `  ${text}`, '', `Link: ${link}`, '',
  ];
  if (values.qr) {
    const { default: encodeQR } = await import('qr');
    lines.push(encodeQR(text, 'ascii', { ecc: 'medium' }), '');
  }
  lines.push(
    'Send it to the other parties, and only to them: whoever has it can join while seats are free.',
    'Every party, you too, then runs:', `  mpyc-agent join ${text} --name YOUR-NAME`, '');
  io.out(lines.join('\n'));
  return EXIT.OK;
}

function createRefusal(status: number, parties: number): string {
  switch (status) {
    case STATUS.SOURCE_LIMIT: return 'the relay already holds as many open lobbies from your address as it allows; wait until one expires';
    case STATUS.RELAY_LIMIT: return 'the relay holds as many open lobbies as it allows; try again later, or use another relay';
    case STATUS.TOO_LARGE: return `the relay does not allow lobbies of ${parties} parties (its operator sets --lobby-parties)`;
    case STATUS.CONFLICT: return 'the relay already has a lobby with this id (a one-in-2^128 event): run invite create again';
    default: return `the relay refused to open the lobby (status ${status})`;
  }
}

function loadOrCreateKey(path: string, create: boolean, io: InviteCmdIO): ReturnType<typeof readKeyFile> {
  if (existsSync(path)) return readKeyFile(path);
  if (!create) {
    throw new UsageError(`no key file at ${path}: create one with \`mpyc-agent keygen --out ${path}\` (or pass --key FILE), or let join create it with --create-key`);
  }
  const kp = writeKeyFile(path);
  io.err(`mpyc-agent join: created your private key in ${path} (mode 0600); keep it, the session file refers to it\n`);
  return kp;
}

async function join(argv: string[], io: InviteCmdIO): Promise<number> {
  const dashes = argv.indexOf('--');
  const own = dashes < 0 ? argv : argv.slice(0, dashes);
  const upArgs = dashes < 0 ? [] : argv.slice(dashes + 1);
  const { help, values, positionals } = parseCommandLine(own, JOIN_OPTIONS);
  if (help) { io.out(JOIN_HELP); return EXIT.OK; }
  if (positionals.length !== 1) throw new UsageError('join takes exactly one INVITE (the MPYC... string or mpyc: link from invite create)');
  if (upArgs.length > 0 && !values.up) throw new UsageError('options after -- are for the agent: they need --up');
  const decoded = decodeInvite(positionals[0]!);
  if (!decoded.ok) throw new UsageError(`invite: ${decoded.error}`);
  const invite = decoded.value;
  const name = values.name ?? defaultName();
  if (nameProblem(name)) throw new UsageError(`--name: ${nameProblem(name)}`);
  const timeoutS = values.timeout === undefined ? undefined : intArg(values.timeout, 'timeout', 1, 86_400, 0);
  const out = values.out ?? DEFAULT_OUT;
  if (existsSync(out) && !values.force) {
    // a file that is not even a session file is something else of the user's: never touch it
    try { loadSessionFile(out); } catch (e) {
      throw new UsageError(`${out} exists and is not a session file (${(e as Error).message}); choose another --out, or --force`);
    }
  }
  const keyPath = values.key ?? DEFAULT_KEY_FILE;
  const keyPair = loadOrCreateKey(keyPath, values['create-key'] ?? false, io);

  io.err(`mpyc-agent join: ${invite.label ? `${JSON.stringify(invite.label)}: ` : ''}${invite.parties}-party session via relay ${invite.relay.host}:${invite.relay.httpPort}\n`);
  const client = new LobbyClient(invite.relay);
  let result;
  try {
    result = await joinLobby({
      invite, keyPair, name, send: (req) => client.send(req), onProgress: (p) => io.err(progressLine(p)),
      ...(timeoutS !== undefined ? { timeoutMs: timeoutS * 1000 } : {}),
    });
  } finally {
    invite.secret.fill(0);
  }
  const { roster, ownIndex } = result;
  const previous = existsSync(out) ? readFileSync(out, 'utf8') : undefined;
  if (previous !== undefined && previous !== roster.text && !values.force) {
    io.out(formatRoster(roster, ownIndex, out, 'not written'));
    throw new LobbyCmdError(`${out} holds a different session; not overwritten (use --force, or --out OTHER)`);
  }
  if (previous !== roster.text) writeFileAtomic(out, roster.text);
  io.out(formatRoster(roster, ownIndex, out, previous === roster.text ? 'unchanged' : 'written'));
  if (!values.up) {
    io.out(`Start your agent: mpyc-agent up ${out} --key ${keyPath}\n`);
    return EXIT.OK;
  }
  return runUp([out, '--key', keyPath, ...upArgs]);
}

function progressLine(p: Progress): string {
  const pre = 'mpyc-agent join: ';
  switch (p.kind) {
    case 'entered': return `${pre}${p.reused ? 'already joined' : 'joined'} as ${p.name === undefined ? '(no name)' : JSON.stringify(p.name)}; the lobby closes in ${Math.ceil(p.secondsLeft / 60)} min\n`;
    case 'members': return `${pre}${p.names.length} of ${p.parties} joined: ${p.names.join(', ')}\n`;
    case 'confirmed': return `${pre}${p.count} of ${p.parties} confirmed the same roster\n`;
    case 'ignored': return `${pre}warning: ${p.count} record(s) in the lobby do not authenticate with this invite and are ignored (someone without the invite's secret, or the relay, posted them)\n`;
    case 'unreachable': return `${pre}${p.error}; retrying\n`;
  }
}

function formatRoster(roster: Roster, ownIndex: number, out: string, what: 'written' | 'unchanged' | 'not written'): string {
  const m = roster.members.length;
  const width = Math.max(4, ...roster.names.map((n) => (n ?? '-').length));
  const lines = [`Session file ${out}: ${what}. Every party agreed on this roster:`];
  roster.members.forEach((p, i) => {
    lines.push(`  party ${i}  ${(roster.names[i] ?? '-').padEnd(width)}  ${p.key.text}  ${mpycCommand(m, i, roster.basePort)}${i === ownIndex ? '   <- you' : ''}`);
  });
  lines.push(`Fingerprint: ${roster.fingerprint}   (read it aloud to each other: it must be the same on every screen)`);
  lines.push(`Full SHA-256 of the session file: ${Buffer.from(roster.fileHash).toString('hex')}`);
  return lines.join('\n') + '\n';
}
