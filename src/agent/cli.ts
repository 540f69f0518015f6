#!/usr/bin/env node
// mpyc-agent command line: keys, the session file, the daemon (`up`) and its status view.
// Each command's module is imported only when that command runs, so `--help`, `--version`
// and usage errors do not wait for the agent, pino, ws and prom-client to load.
import { EXIT, EXIT_CODES_HELP, UsageError, exitCodeOf, expectPositionals, packageVersion, parseCommandLine } from '../common/cli.js';
import { DEFAULT_KEY_FILE, USAGE } from './usage.js';

interface Command {
  usage: string;
  summary: string;
  run(args: string[]): Promise<number>;
}

const KEYGEN_OPTIONS = { out: { kind: 'string', value: 'FILE' }, force: { kind: 'boolean' } } as const;
const PUBKEY_OPTIONS = { key: { kind: 'string', value: 'FILE' } } as const;

const COMMANDS: Record<string, Command> = {
  keygen: {
    usage: USAGE.keygen,
    summary: `Create this party's X25519 key pair. Writes the private key to FILE
      (default ./${DEFAULT_KEY_FILE}) with mode 0600 and prints the public key
      (44 base64 characters) to share with the other parties. Refuses to overwrite
      an existing file unless --force is given.`,
    async run(args) {
      const { help, values, positionals } = parseCommandLine(args, KEYGEN_OPTIONS);
      if (help) return printHelp('keygen');
      expectPositionals(positionals, 0, 0, 'nothing');
      const [{ writeKeyFile }, { PeerKey }] = await Promise.all([import('../common/keys.js'), import('../common/peer-key.js')]);
      const path = values.out ?? DEFAULT_KEY_FILE;
      const kp = writeKeyFile(path, { force: values.force ?? false });
      kp.privateKey.fill(0);
      process.stderr.write(`mpyc-agent: private key written to ${path} (mode 0600); public key:\n`);
      process.stdout.write(PeerKey.fromBytes(kp.publicKey).text + '\n');
      return EXIT.OK;
    },
  },
  pubkey: {
    usage: USAGE.pubkey,
    summary: `Print the public key of a key file (default ./${DEFAULT_KEY_FILE}).`,
    async run(args) {
      const { help, values, positionals } = parseCommandLine(args, PUBKEY_OPTIONS);
      if (help) return printHelp('pubkey');
      expectPositionals(positionals, 0, 0, 'nothing');
      const [{ readKeyFile }, { PeerKey }] = await Promise.all([import('../common/keys.js'), import('../common/peer-key.js')]);
      const kp = readKeyFile(values.key ?? DEFAULT_KEY_FILE, { keygenCommand: 'mpyc-agent keygen' });
      kp.privateKey.fill(0);
      process.stdout.write(PeerKey.fromBytes(kp.publicKey).text + '\n');
      return EXIT.OK;
    },
  },
  session: {
    usage: USAGE.session,
    summary: `Write and inspect the session file the parties share (relay addresses and every
      party's public key, in MPyC index order). See: mpyc-agent session --help`,
    run: async (args) => (await import('./session-cmd.js')).runSessionCommand(args),
  },
  invite: {
    usage: USAGE.invite,
    summary: `Open a lobby on the relay and print an invite to send to the other parties.
      See: mpyc-agent invite create --help`,
    run: async (args) => (await import('./invite-cmd.js')).runInviteCommand('invite', args),
  },
  join: {
    usage: USAGE.join,
    summary: `Every party (the creator too): join the lobby, wait for all parties, write the
      session file they all agreed on and print its fingerprint. See: mpyc-agent join --help`,
    run: async (args) => (await import('./invite-cmd.js')).runInviteCommand('join', args),
  },
  up: {
    usage: USAGE.up,
    summary: `Run this party's agent (foreground). Prints the MPyC command line to use.
      Options also from MPYC_AGENT_* variables or a config file. See: mpyc-agent up --help`,
    run: async (args) => (await import('./up.js')).runUp(args),
  },
  status: {
    usage: USAGE.status,
    summary: `Ask the running agent for its relays, NAT and peers: registration, NAT mapping,
      port mapping, liveness, path (direct address and the mechanism that found it, or
      relay), RTT, bytes each way, handshake age, birthday probing, last error; --watch
      refreshes until Ctrl-C. See: mpyc-agent status --help`,
    run: async (args) => (await import('./status-cmd.js')).runStatus(args),
  },
  ping: {
    usage: USAGE.ping,
    summary: `Echo to another party through the running agent: per sample the RTT and the path
      taken (direct address and the mechanism that found it, or relay and transport), then a summary;
      exit 1 when nothing answered. See: mpyc-agent ping --help`,
    run: async (args) => (await import('./ping-cmd.js')).runPing(args),
  },
  netcheck: {
    usage: USAGE.netcheck,
    summary: `Check this host's network without an agent: UDP to each relay (IPv4 and IPv6),
      the reflexive address, whether the NAT mapping depends on the destination, WebSocket
      reach (through the HTTP(S)_PROXY the agent would use), RTT per relay. See: mpyc-agent netcheck --help`,
    run: async (args) => (await import('./netcheck-cmd.js')).runNetcheck(args),
  },
};

const HELP = `mpyc-agent — the MPyC party's connectivity agent

Usage:
${Object.values(COMMANDS).map((c) => `  ${c.usage}\n      ${c.summary}`).join('\n')}
  mpyc-agent help COMMAND | COMMAND --help
      Help on one command.
  mpyc-agent --version
      The version of this program.

Logs go to stderr (human lines on a terminal, JSON lines otherwise); program output
(public keys, the MPyC command line, status) to stdout.

${EXIT_CODES_HELP}`;

function printHelp(cmd: 'keygen' | 'pubkey'): number {
  process.stdout.write(`${COMMANDS[cmd]!.usage}\n\n  ${COMMANDS[cmd]!.summary.replace(/\n {6}/g, '\n  ')}\n\n${EXIT_CODES_HELP}`);
  return EXIT.OK;
}

async function dispatch(cmd: string | undefined, rest: string[]): Promise<number> {
  if (cmd === undefined) { process.stdout.write(HELP); return EXIT.USAGE; }
  if (cmd === '-h' || cmd === '--help') { process.stdout.write(HELP); return EXIT.OK; }
  if (cmd === '--version' || cmd === '-V') { process.stdout.write(`mpyc-agent ${packageVersion()}\n`); return EXIT.OK; }
  if (cmd === 'help') {
    if (rest[0] === undefined) { process.stdout.write(HELP); return EXIT.OK; }
    const target = COMMANDS[rest[0]];
    if (!target) throw new UsageError(`unknown command ${JSON.stringify(rest[0])} (commands: ${Object.keys(COMMANDS).join(', ')})`);
    return target.run(['--help']);
  }
  const command = COMMANDS[cmd];
  if (!command) {
    const what = cmd.startsWith('-') ? `unknown option ${cmd} (options come after the command)` : `unknown command ${JSON.stringify(cmd)}`;
    throw new UsageError(`${what} (commands: ${Object.keys(COMMANDS).join(', ')})`);
  }
  return command.run(rest);
}

/** Runs one command line; every error becomes a message on stderr (with the command's usage for a usage error) and its exit code. */
async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    return await dispatch(cmd, rest);
  } catch (err) {
    process.stderr.write(`mpyc-agent: ${err instanceof Error ? err.message : String(err)}\n`);
    if (err instanceof UsageError) {
      const command = cmd !== undefined ? COMMANDS[cmd] : undefined;
      process.stderr.write(command ? `Usage: ${command.usage}\nTry: mpyc-agent ${cmd} --help\n` : 'Try: mpyc-agent --help\n');
    }
    return exitCodeOf(err);
  }
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
