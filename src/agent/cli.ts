#!/usr/bin/env node
// mpyc-agent command line: keys, the session file, the daemon (`up`) and its status view.
import { parseArgs } from 'node:util';
import { readKeyFile, writeKeyFile } from '../common/keys.js';
import { encodeKey } from '../common/base64.js';
import { runSessionCommand } from './session-cmd.js';
import { DEFAULT_KEY_FILE, UP_HELP, UsageError, runUp } from './up.js';
import { controlSocketPath, defaultControlDir, listControlSockets, queryStatus } from './control.js';
import { formatStatus } from './status-format.js';

const HELP = `mpyc-agent — the MPyC party's connectivity agent

Usage:
  mpyc-agent keygen [--out FILE] [--force]
      Create this party's X25519 key pair. Writes the private key to FILE
      (default ./${DEFAULT_KEY_FILE}) with mode 0600 and prints the public key
      (44 base64 characters) to share with the other parties. Refuses to overwrite
      an existing file unless --force is given.
  mpyc-agent pubkey [--key FILE]
      Print the public key of a key file (default ./${DEFAULT_KEY_FILE}).
  mpyc-agent session create|add|show ...
      Write and inspect the session file the parties share (relay addresses and every
      party's public key, in MPyC index order). See: mpyc-agent session --help
  mpyc-agent invite create --relay ADDR --parties M [--name NAME] [--qr]
      Open a lobby on the relay and print an invite to send to the other parties.
      See: mpyc-agent invite create --help
  mpyc-agent join INVITE [--name NAME] [--key FILE] [--out FILE] [--up]
      Every party (the creator too): join the lobby, wait for all parties, write the
      session file they all agreed on and print its fingerprint. See: mpyc-agent join --help
  mpyc-agent up SESSION [--key FILE] [options]
      Run this party's agent (foreground). Prints the MPyC command line to use.
      See: mpyc-agent up --help
  mpyc-agent status [--json] [--control PATH | --key FILE]
      Ask the running agent for its peers: state, path (direct address or relay), RTT,
      bytes each way, handshake age, last error. Without --control/--key: the only
      agent of this user (error if there are several).
  mpyc-agent --help
      This text.

Exit codes: 0 success; 1 runtime failure (agent not reachable, session problem);
2 bad usage, unusable key file or session file.
`;

const STATUS_HELP = `mpyc-agent status [--json] [--control PATH | --key FILE]

Shows the running agent's view of every peer. --json prints the full status object.
The agent is found by --control (its socket), by --key (its key file: the socket name
derives from the public key), or as the only agent socket in ${defaultControlDir()}.
`;

async function status(rest: string[]): Promise<number> {
  const { values } = parseArgs({ args: rest, strict: true, allowPositionals: false, options: {
    json: { type: 'boolean' }, control: { type: 'string' }, key: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) { process.stdout.write(STATUS_HELP); return 0; }
  let path = values.control;
  if (!path && values.key) path = controlSocketPath(encodeKey(readKeyFile(values.key).publicKey));
  if (!path) {
    const found = listControlSockets();
    if (found.length === 0) throw new RuntimeError(`no running agent found in ${defaultControlDir()} (start one with: mpyc-agent up SESSION --key FILE)`);
    if (found.length > 1) throw new UsageError(`several agents run here; choose one with --key FILE or --control PATH:\n  ${found.join('\n  ')}`);
    path = found[0]!;
  }
  const st = await queryStatus(path);
  process.stdout.write(values.json ? JSON.stringify(st, null, 2) + '\n' : formatStatus(st));
  return 0;
}

class RuntimeError extends Error {}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '-h' || cmd === '--help' || cmd === 'help') { process.stdout.write(HELP); return cmd ? 0 : 2; }
  if (cmd === 'session') return runSessionCommand(rest);
  if (cmd === 'status') return status(rest);
  if (cmd === 'invite' || cmd === 'join') return (await import('./invite-cmd.js')).runInviteCommand(cmd, rest);
  if (cmd === 'up') {
    if (rest.includes('-h') || rest.includes('--help')) { process.stdout.write(UP_HELP); return 0; }
    await runUp(rest);
    return 0;
  }
  if (cmd === 'keygen') {
    const { values } = parseArgs({ args: rest, strict: true, allowPositionals: false, options: {
      out: { type: 'string' }, force: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
    if (values.help) { process.stdout.write(HELP); return 0; }
    const path = values.out ?? DEFAULT_KEY_FILE;
    const kp = writeKeyFile(path, { force: values.force ?? false });
    process.stderr.write(`mpyc-agent: private key written to ${path} (mode 0600); public key:\n`);
    process.stdout.write(encodeKey(kp.publicKey) + '\n');
    return 0;
  }
  if (cmd === 'pubkey') {
    const { values } = parseArgs({ args: rest, strict: true, allowPositionals: false, options: {
      key: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
    if (values.help) { process.stdout.write(HELP); return 0; }
    process.stdout.write(encodeKey(readKeyFile(values.key ?? DEFAULT_KEY_FILE).publicKey) + '\n');
    return 0;
  }
  throw new UsageError(`unknown command ${JSON.stringify(cmd)}`);
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
}, (err: unknown) => {
  process.stderr.write(`mpyc-agent: ${err instanceof Error ? err.message : String(err)}\n`);
  const usage = err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
  if (usage) process.stderr.write('Try: mpyc-agent --help\n');
  process.exitCode = err instanceof RuntimeError || (err as Error).name === 'ControlError' ? 1 : 2;
});
