// The mpyc-sim CLI as scripts run it (built dist/ JS; `npm test` builds first).
import { describe, it, expect } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freeBase } from './ports.js';

const CLI = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../dist/scripts/mpyc-sim.js');

function runAsync(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const p = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const kill = setTimeout(() => p.kill('SIGKILL'), 20_000);
    p.stdout.on('data', (d) => { stdout += String(d); });
    p.stderr.on('data', (d) => { stderr += String(d); });
    p.on('exit', (code) => { clearTimeout(kill); res({ code, stdout, stderr }); });
  });
}

describe('mpyc-sim CLI', () => {
  it('three processes with MPyC flags (-M3 -I i -B b) verify and print JSON stats', async () => {
    const base = await freeBase(3);
    const runs = await Promise.all([0, 1, 2].map((i) => runAsync([`-M3`, '-I', String(i), '-B', String(base), '--rounds', '5', '--bulk', '50000', '--json', '--timeout', '15'])));
    for (const [i, r] of runs.entries()) {
      expect(r.code, r.stderr).toBe(0);
      const s = JSON.parse(r.stdout) as { pid: number; messagesVerified: number };
      expect(s.pid).toBe(i);
      expect(s.messagesVerified).toBe(2 * (5 + 2));
    }
  });

  it('bad usage exits 2 with a message; --help exits 0', () => {
    const r = spawnSync(process.execPath, [CLI, '-M3', '-I', '3'], { encoding: 'utf8', timeout: 10_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/-I 3: must be below -M 3/);
    const h = spawnSync(process.execPath, [CLI, '--help'], { encoding: 'utf8', timeout: 10_000 });
    expect(h.status).toBe(0);
    expect(h.stdout).toMatch(/--base-port/);
  });
});
