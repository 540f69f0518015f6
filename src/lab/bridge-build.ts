// Compiles delay-bridge.c with the machine's C compiler, once per source version.
// (Node has no AF_PACKET sockets without a native module; a 200-line C helper built
// on demand needs nothing beyond cc, which every machine of this project has.)
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The C source sits in src/lab/ next to this file's TypeScript source; from dist/src/lab/
 * it is found by walking up to the repository root. */
export function bridgeSourcePath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'src', 'lab', 'delay-bridge.c');
    if (existsSync(candidate)) return candidate;
    const here = join(dir, 'delay-bridge.c');
    if (existsSync(here)) return here;
    dir = resolve(dir, '..');
  }
  throw new Error('delay-bridge.c not found');
}

export function buildDelayBridge(cacheDir = join(tmpdir(), 'mpyc-lab-bin')): string {
  const src = bridgeSourcePath();
  const text = readFileSync(src);
  const hash = createHash('sha256').update(text).digest('hex').slice(0, 16);
  const out = join(cacheDir, `delay-bridge-${hash}`);
  if (existsSync(out)) return out;
  mkdirSync(cacheDir, { recursive: true });
  // build to a unique name and rename: parallel test files may build at the same time
  const tmp = `${out}.${process.pid}.tmp`;
  execFileSync('cc', ['-O2', '-Wall', '-o', tmp, src], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 60_000 });
  renameSync(tmp, out);
  return out;
}
