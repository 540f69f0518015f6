// Where the built JavaScript of this checkout is: the lab runs the real CLIs and its own
// helpers (udp-probe) from dist/, also when the lab itself runs from source under vitest.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** dist/ of this checkout, found from this module (dist/src/lab or src/lab under vitest). */
export function distDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, 'dist', 'src', 'agent', 'cli.js'))) return join(dir, 'dist');
    if (existsSync(join(dir, 'src', 'agent', 'cli.js')) && dir.endsWith('dist')) return dir;
    dir = resolve(dir, '..');
  }
  throw new Error('dist/ not found: run `npm run build` first');
}

/** The agent-free probe (udp-probe.ts) as built. */
export function probeScript(): string { return join(distDir(), 'src', 'lab', 'udp-probe.js'); }
