#!/usr/bin/env node
// mpyc-relay: STUN + authenticated relay for mpyc-agent. See docs/relay.md.
// Commands parse their options with the shared parser (src/common/cli.ts) and exit with its
// codes. What a command needs beyond that (keys and sodium, the server) is imported only
// when it runs, so --help, --version and usage errors answer at once.
import { EXIT, EXIT_CODES_HELP, UsageError, exitCodeOf, expectPositionals, packageVersion, parseCommandLine } from '../common/cli.js';
import { SERVE_OPTIONS_HELP, SERVE_USAGE } from './serve-options.js';

const KEYGEN_OPTIONS = { out: { kind: 'string', value: 'FILE' }, force: { kind: 'boolean' } } as const;
const PUBKEY_OPTIONS = { key: { kind: 'string', value: 'FILE' } } as const;

const USAGE = {
  keygen: 'mpyc-relay keygen [--out FILE] [--force]',
  pubkey: 'mpyc-relay pubkey --key FILE',
  serve: SERVE_USAGE,
} as const;
type CommandName = keyof typeof USAGE;

const HELP = `mpyc-relay — STUN server and authenticated packet relay for mpyc-agent

Usage:
  ${USAGE.keygen}
      Create a relay key. With --out, writes the private key to FILE (mode 0600,
      refuses to overwrite unless --force) and prints the public key. Without --out,
      prints the private key on stdout.
  ${USAGE.pubkey}
      Print the public key of a key file.
  ${USAGE.serve}
      Run the relay (serve --help: the same options and what follows them).
  mpyc-relay --version
      The version of this program.

serve options:
${SERVE_OPTIONS_HELP}
On start the relay logs one line "listening" (JSON: {"msg":"listening",...}) with the
ports actually bound (use port 0 for ephemeral ports) and the address string for session files:
  KEY@host:udpPort/httpPort
Every limit, its default and the reason for it: docs/relay.md.
SIGTERM/SIGINT: agents are told the relay is restarting, then it exits.

${EXIT_CODES_HELP}`;

/** keygen: stdout carries only the key (scripts read it); the label goes to stderr. */
async function keygen(args: string[]): Promise<number> {
  const { help, values, positionals } = parseCommandLine(args, KEYGEN_OPTIONS);
  if (help) { process.stdout.write(`Usage: ${USAGE.keygen}\n\n${EXIT_CODES_HELP}`); return EXIT.OK; }
  expectPositionals(positionals, 0, 0, 'nothing');
  const [{ writeKeyFile }, { PeerKey }, { generateKeyPair }] = await Promise.all([import('../common/keys.js'), import('../common/peer-key.js'), import('../noise/index.js')]);
  if (values.out !== undefined) {
    const kp = writeKeyFile(values.out, { force: values.force ?? false });
    kp.privateKey.fill(0);
    process.stderr.write(`mpyc-relay: private key written to ${values.out} (mode 0600); the relay's public key:\n`);
    process.stdout.write(PeerKey.fromBytes(kp.publicKey).text + '\n');
    return EXIT.OK;
  }
  const kp = generateKeyPair();
  process.stderr.write(`mpyc-relay: PRIVATE key below (keep it secret; save it in a mode 0600 file); its public key is ${PeerKey.fromBytes(kp.publicKey).text}\n`);
  const text = Buffer.from(kp.privateKey);
  process.stdout.write(text.toString('base64') + '\n');
  text.fill(0);
  kp.privateKey.fill(0);
  return EXIT.OK;
}

async function pubkey(args: string[]): Promise<number> {
  const { help, values, positionals } = parseCommandLine(args, PUBKEY_OPTIONS);
  if (help) { process.stdout.write(`Usage: ${USAGE.pubkey}\n\n${EXIT_CODES_HELP}`); return EXIT.OK; }
  expectPositionals(positionals, 0, 0, 'nothing');
  if (values.key === undefined) throw new UsageError('pubkey: --key FILE is required');
  const [{ readKeyFile }, { PeerKey }] = await Promise.all([import('../common/keys.js'), import('../common/peer-key.js')]);
  const kp = readKeyFile(values.key, { keygenCommand: 'mpyc-relay keygen' });
  kp.privateKey.fill(0);
  process.stdout.write(PeerKey.fromBytes(kp.publicKey).text + '\n');
  return EXIT.OK;
}

const COMMANDS: Record<CommandName, (args: string[]) => Promise<number>> = {
  keygen,
  pubkey,
  serve: async (args) => (await import('./serve.js')).runServe(args),
};

async function dispatch(cmd: string | undefined, rest: string[]): Promise<number> {
  if (cmd === undefined) { process.stdout.write(HELP); return EXIT.USAGE; }
  if (cmd === '-h' || cmd === '--help' || (cmd === 'help' && rest.length === 0)) { process.stdout.write(HELP); return EXIT.OK; }
  if (cmd === '--version' || cmd === '-V') { process.stdout.write(`mpyc-relay ${packageVersion()}\n`); return EXIT.OK; }
  if (cmd === 'help') return dispatch(rest[0], ['--help']);
  if (!Object.hasOwn(COMMANDS, cmd)) {
    const what = cmd.startsWith('-') ? `unknown option ${cmd} (options come after the command)` : `unknown command ${JSON.stringify(cmd)}`;
    throw new UsageError(`${what} (commands: ${Object.keys(COMMANDS).join(', ')})`);
  }
  return COMMANDS[cmd as CommandName](rest);
}

/** Runs one command line; an error becomes one message on stderr (with the usage for a usage error) and its exit code. */
async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  try {
    process.exitCode = await dispatch(cmd, rest);
  } catch (err) {
    process.stderr.write(`mpyc-relay: ${err instanceof Error ? err.message : String(err)}\n`);
    if (err instanceof UsageError) {
      const known = cmd !== undefined && Object.hasOwn(USAGE, cmd);
      process.stderr.write(known ? `Usage: ${USAGE[cmd as CommandName]}\nTry: mpyc-relay ${cmd} --help\n` : 'Try: mpyc-relay --help\n');
    }
    // exit now: a half-started relay (one port bound, the other refused) must not linger
    process.exit(exitCodeOf(err));
  }
}

void main(process.argv.slice(2));
