// Key files shared by mpyc-agent and mpyc-relay: the base64 private key and a newline,
// mode 0600 (ARCHITECTURE.md "Keys and identities"). Created with O_EXCL so an existing
// key is never overwritten by accident; refused when group or others can read it.
import { readFileSync, writeFileSync, statSync, openSync, closeSync, constants as fsc } from 'node:fs';
import { generateKeyPair, publicKeyOf, type KeyPair } from '../noise/index.js';

export function writeKeyFile(path: string, opts: { force?: boolean } = {}): KeyPair {
  const kp = generateKeyPair();
  const flags = fsc.O_WRONLY | fsc.O_CREAT | (opts.force ? fsc.O_TRUNC : fsc.O_EXCL);
  let fd: number;
  try {
    fd = openSync(path, flags, 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new Error(`${path}: already exists; refusing to overwrite a key (use --force)`);
    throw new Error(`${path}: cannot create key file (${code ?? String(err)})`);
  }
  try {
    writeFileSync(fd, Buffer.from(kp.privateKey).toString('base64') + '\n');
  } finally { closeSync(fd); }
  return kp;
}

export function readKeyFile(path: string): KeyPair {
  let st;
  try { st = statSync(path); } catch (err) {
    throw new Error(`${path}: cannot read key file (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  if (!st.isFile()) throw new Error(`${path}: not a regular file`);
  if ((st.mode & 0o077) !== 0) {
    throw new Error(`${path}: key file is readable by group or others (mode ${(st.mode & 0o777).toString(8)}); fix with: chmod 600 ${path}`);
  }
  const text = readFileSync(path, 'utf8').trim();
  if (!/^[A-Za-z0-9+/]{43}=$/.test(text)) throw new Error(`${path}: not a key file (expected 44 base64 characters encoding 32 bytes)`);
  const privateKey = new Uint8Array(Buffer.from(text, 'base64'));
  return { privateKey, publicKey: publicKeyOf(privateKey) };
}
