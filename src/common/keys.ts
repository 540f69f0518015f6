// Key files shared by mpyc-agent and mpyc-relay: the base64 private key and a newline,
// mode 0600 (ARCHITECTURE.md "Keys and identities"). Created with O_EXCL so an existing
// key is never overwritten by accident; refused when group or others can read it.
// Every refusal is a KeyFileError (exit 3) that names the file and says how to fix it.
import { readFileSync, writeFileSync, statSync, openSync, closeSync, constants as fsc } from 'node:fs';
import { generateKeyPair, publicKeyOf, type KeyPair } from '../noise/index.js';
import { InputFileError } from './cli.js';

export class KeyFileError extends InputFileError {
  override name = 'KeyFileError';
}

export function writeKeyFile(path: string, opts: { force?: boolean } = {}): KeyPair {
  const kp = generateKeyPair();
  const flags = fsc.O_WRONLY | fsc.O_CREAT | (opts.force ? fsc.O_TRUNC : fsc.O_EXCL);
  let fd: number;
  try {
    fd = openSync(path, flags, 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new KeyFileError(`${path}: already exists; refusing to overwrite a key (use --force)`);
    throw new KeyFileError(`${path}: cannot create key file (${code ?? String(err)})`);
  }
  try {
    writeFileSync(fd, Buffer.from(kp.privateKey).toString('base64') + '\n');
  } finally { closeSync(fd); }
  return kp;
}

export interface ReadKeyOptions {
  /** the command that creates this kind of key, for the hint when the file is missing (e.g. "mpyc-agent keygen") */
  keygenCommand?: string;
}

/** Reads a key pair; callers that need only the public key zero `privateKey` after use. */
export function readKeyFile(path: string, opts: ReadKeyOptions = {}): KeyPair {
  let st;
  try { st = statSync(path); } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // a 44-character base64 text given where a file is expected is a public key pasted into
    // the wrong option (e.g. session add --key instead of --pubkey): say so instead of
    // offering to create a key file with that name
    const looksLikeKey = /^[A-Za-z0-9+/]{43}=$/.test(path);
    const hint = looksLikeKey ? '; this looks like a public key, not the path of a key file (commands that take a public key take it with --pubkey)'
      : code === 'ENOENT' ? `; create one with: ${opts.keygenCommand ?? 'keygen'} --out ${path}` : '';
    throw new KeyFileError(`${path}: cannot read key file (${code ?? String(err)})${hint}`);
  }
  if (!st.isFile()) throw new KeyFileError(`${path}: not a regular file`);
  if ((st.mode & 0o077) !== 0) {
    throw new KeyFileError(`${path}: key file is readable by group or others (mode ${(st.mode & 0o777).toString(8)}); fix with: chmod 600 ${path}`);
  }
  // a key file is 45 bytes; do not read a large file given by mistake into memory
  if (st.size > 1024) throw new KeyFileError(`${path}: not a key file (${st.size} bytes; a key file is 45)`);
  const text = readFileSync(path, 'utf8').trim();
  if (!/^[A-Za-z0-9+/]{43}=$/.test(text)) throw new KeyFileError(`${path}: not a key file (expected 44 base64 characters encoding 32 bytes)`);
  const decoded = Buffer.from(text, 'base64');
  const privateKey = new Uint8Array(decoded);
  decoded.fill(0);
  return { privateKey, publicKey: publicKeyOf(privateKey) };
}
