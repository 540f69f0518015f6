// `mpyc-relay serve --workers 2` and signals in the workers' start-up: the primary passes
// SIGHUP on only to a worker whose handler is installed (its 'ready'), later ones once
// they are; before that the signal's default action would end the worker (cluster.ts).
import { describe, it, expect, afterAll } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { listeningLine, waitFor } from './helpers.js';

const CLI = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../dist/src/relay/cli.js');
const dir = mkdtempSync(join(tmpdir(), 'mpyc-relay-signals-'));
const procs: ChildProcess[] = [];
afterAll(() => { for (const p of procs) p.kill('SIGKILL'); rmSync(dir, { recursive: true, force: true }); });

const childrenOf = (pid: number): number[] => {
  try { return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number); } catch { return []; }
};
const alive = (pid: number): boolean => { try { process.kill(pid, 0); return true; } catch { return false; } };

describe('relay cluster signals', () => {
  it('SIGHUP during the workers\' start-up neither kills a worker nor is lost', async () => {
    const keyFile = join(dir, 'relay.key');
    spawnSync(process.execPath, [CLI, 'keygen', '--out', keyFile], { encoding: 'utf8' });
    const p = spawn(process.execPath, [CLI, 'serve', '--key', keyFile, '--udp', '127.0.0.1:0', '--http', '127.0.0.1:0', '--workers', '2', '--log-format', 'json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    procs.push(p);
    let log = '';
    p.stderr!.on('data', (d) => { log += String(d); });
    const listening = listeningLine(p);
    // SIGHUPs from the moment the workers exist through their first 0.4 s (module loading)
    await waitFor(() => childrenOf(p.pid!).length === 2, 10_000, 'two workers forked');
    const workers = childrenOf(p.pid!);
    const t0 = Date.now();
    while (Date.now() - t0 < 400) { p.kill('SIGHUP'); await new Promise((r) => setTimeout(r, 20)); }
    await listening;
    await waitFor(() => /worker listening/.test(log), 10_000, 'worker 1 listening');
    // every worker applies a reload once it can: one "config reloaded" line each
    await waitFor(() => new Set([...log.matchAll(/"worker":(\d+)[^\n]*"msg":"config reloaded"/g)].map((m) => m[1])).size === 2, 10_000, 'a reload in each worker');
    expect(workers.every(alive), log).toBe(true);
    expect(log).not.toMatch(/relay worker exited/);
    p.kill('SIGTERM');
    expect(await new Promise((r) => p.once('exit', (c) => r(c)))).toBe(0);
  }, 30_000);
});
