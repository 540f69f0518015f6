#!/usr/bin/env node
// mpyc-agent command line. Today it manages the party's key; `up` (the daemon that
// carries MPyC's connections) is issue #5 and is not built yet, so it is not offered.
import { parseArgs } from 'node:util';
import { readKeyFile, writeKeyFile } from '../common/keys.js';
import { encodeKey } from '../common/base64.js';

const DEFAULT_KEY_FILE = 'mpyc-agent.key';

const HELP = `mpyc-agent — the MPyC party's connectivity agent

Usage:
  mpyc-agent keygen [--out FILE] [--force]
      Create this party's X25519 key pair. Writes the private key to FILE
      (default ./${DEFAULT_KEY_FILE}) with mode 0600 and prints the public key
      (44 base64 characters) to share with the other parties. Refuses to overwrite
      an existing file unless --force is given.
  mpyc-agent pubkey [--key FILE]
      Print the public key of a key file (default ./${DEFAULT_KEY_FILE}).
  mpyc-agent --help
      This text.

Exit codes: 0 success; 2 bad usage or unusable key file.
`;

class UsageError extends Error {}

function main(argv: string[]): void {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '-h' || cmd === '--help' || cmd === 'help') { process.stdout.write(HELP); return; }
  if (cmd === 'keygen') {
    const { values } = parseArgs({ args: rest, strict: true, allowPositionals: false, options: {
      out: { type: 'string' }, force: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
    if (values.help) { process.stdout.write(HELP); return; }
    const path = values.out ?? DEFAULT_KEY_FILE;
    const kp = writeKeyFile(path, { force: values.force ?? false });
    process.stderr.write(`mpyc-agent: private key written to ${path} (mode 0600); public key:\n`);
    process.stdout.write(encodeKey(kp.publicKey) + '\n');
    return;
  }
  if (cmd === 'pubkey') {
    const { values } = parseArgs({ args: rest, strict: true, allowPositionals: false, options: {
      key: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
    if (values.help) { process.stdout.write(HELP); return; }
    process.stdout.write(encodeKey(readKeyFile(values.key ?? DEFAULT_KEY_FILE).publicKey) + '\n');
    return;
  }
  throw new UsageError(`unknown command ${JSON.stringify(cmd)}`);
}

try {
  main(process.argv.slice(2));
} catch (err: unknown) {
  process.stderr.write(`mpyc-agent: ${err instanceof Error ? err.message : String(err)}\n`);
  if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) process.stderr.write('Try: mpyc-agent --help\n');
  process.exit(2);
}
