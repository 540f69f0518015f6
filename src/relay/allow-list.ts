// The relay's allow-list file (--allow): one base64 agent public key per line, '#' starts
// a comment, blank lines ignored. Read at start and on every SIGHUP; a file that cannot be
// used is an InputFileError naming the file and line, so the old list stays in force.
import { readFileSync, statSync } from 'node:fs';
import { InputFileError } from '../common/cli.js';
import { PeerKey } from '../common/peer-key.js';

/** a million keys with comments; a larger file is not an allow-list (and would be read into memory) */
export const MAX_ALLOW_LIST_BYTES = 64 << 20;

export class AllowListError extends InputFileError {
  override name = 'AllowListError';
}

/** The keys (PeerKey text) of an allow-list file. */
export function loadAllowList(path: string): Set<string> {
  let text: string;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new AllowListError(`${path}: not a regular file (--allow wants a file of agent keys)`);
    if (st.size > MAX_ALLOW_LIST_BYTES) throw new AllowListError(`${path}: larger than ${MAX_ALLOW_LIST_BYTES} bytes; not an allow-list`);
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (err instanceof AllowListError) throw err;
    throw new AllowListError(`${path}: cannot read allow-list (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  const keys = new Set<string>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) return;
    try {
      keys.add(PeerKey.fromText(line, `${path}:${i + 1}`).text);
    } catch (err) {
      throw new AllowListError(`${(err as Error).message} (one base64 agent public key per line)`);
    }
  });
  return keys;
}
