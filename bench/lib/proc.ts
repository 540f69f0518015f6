// Child processes of the benchmark: every endpoint (echo server, client, MPyC-like party,
// WebRTC peer, agent, relay) is its own process, optionally inside a network namespace
// (`ip netns exec NS node ...`) for the emulated-WAN runs. All children are tracked so a
// failure or Ctrl-C never leaves an agent or relay running.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { performance } from 'node:perf_hooks';

/** Absolute wall clock in ms with µs resolution, comparable across processes on one machine. */
export function nowAbs(): number {
  return performance.timeOrigin + performance.now();
}

export interface Proc {
  child: ChildProcess;
  name: string;
  /** every complete JSON object line seen on stdout or stderr, with its arrival time (nowAbs) */
  lines: Array<{ at: number; rec: Record<string, unknown> }>;
  /** resolves with the first JSON line for which pred holds (also past ones) */
  waitFor(pred: (rec: Record<string, unknown>) => boolean, timeoutMs: number, what: string): Promise<{ at: number; rec: Record<string, unknown> }>;
  /** resolves with the exit code */
  exited: Promise<number | null>;
  stderrTail(): string;
  send(obj: unknown): void;
}

const live = new Set<ChildProcess>();

/** Kill every child still running (SIGTERM; SIGKILL after graceMs). */
export async function killAll(graceMs = 2000): Promise<void> {
  const waits = [...live].map((c) => stop(c, graceMs));
  await Promise.all(waits);
}

export function stop(c: ChildProcess, graceMs = 2000): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) { live.delete(c); return Promise.resolve(); }
  return new Promise((resolve) => {
    const t = setTimeout(() => { c.kill('SIGKILL'); }, graceMs);
    c.once('exit', () => { clearTimeout(t); live.delete(c); resolve(); });
    c.kill('SIGTERM');
  });
}

/**
 * Spawn `node ...args`, inside network namespace `netns` when given. stdin is a pipe
 * (used for WebRTC signalling); stdout and stderr are parsed as JSON lines.
 */
export interface SpawnOptions { netns?: string | null; nodeFlags?: string[]; /** added to this process's environment */ env?: Record<string, string> }

export function spawnNode(name: string, args: string[], opts: SpawnOptions = {}): Proc {
  const nodeArgs = [...(opts.nodeFlags ?? []), ...args];
  const o = { stdio: ['pipe', 'pipe', 'pipe'] as const, env: opts.env ? { ...process.env, ...opts.env } : process.env };
  const child = opts.netns
    ? spawn('ip', ['netns', 'exec', opts.netns, process.execPath, ...nodeArgs], { ...o, stdio: ['pipe', 'pipe', 'pipe'] })
    : spawn(process.execPath, nodeArgs, { ...o, stdio: ['pipe', 'pipe', 'pipe'] });
  live.add(child);
  const lines: Proc['lines'] = [];
  const waiters: Array<{ pred: (r: Record<string, unknown>) => boolean; resolve: (v: { at: number; rec: Record<string, unknown> }) => void }> = [];
  let tail = '';
  const onLine = (line: string): void => {
    const at = nowAbs();
    if (!line.startsWith('{')) return;
    let rec: Record<string, unknown>;
    try { rec = JSON.parse(line) as Record<string, unknown>; } catch { return; }
    lines.push({ at, rec });
    for (let i = waiters.length - 1; i >= 0; i--) {
      const w = waiters[i]!;
      if (w.pred(rec)) { waiters.splice(i, 1); w.resolve({ at, rec }); }
    }
  };
  createInterface({ input: child.stdout! }).on('line', onLine);
  createInterface({ input: child.stderr! }).on('line', (l) => { tail = (tail + l + '\n').slice(-4000); onLine(l); });
  child.stdin!.on('error', () => { /* child gone; its exit is reported elsewhere */ });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => { live.delete(child); resolve(code); }));
  const proc: Proc = {
    child, name, lines, exited,
    stderrTail: () => tail.trim(),
    send: (obj) => { child.stdin!.write(JSON.stringify(obj) + '\n'); },
    waitFor: (pred, timeoutMs, what) => {
      const past = lines.find((l) => pred(l.rec));
      if (past) return Promise.resolve(past);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`${name}: timed out after ${timeoutMs} ms waiting for ${what}\n${tail.trim().slice(-1500)}`)), timeoutMs);
        const w = { pred, resolve: (v: { at: number; rec: Record<string, unknown> }) => { clearTimeout(t); resolve(v); } };
        waiters.push(w);
        void exited.then((code) => {
          const i = waiters.indexOf(w);
          if (i >= 0) { waiters.splice(i, 1); clearTimeout(t); reject(new Error(`${name} exited (code ${code}) while waiting for ${what}\n${tail.trim().slice(-1500)}`)); }
        });
      });
    },
  };
  return proc;
}

/** Run a child to completion and return its last JSON line (its result); rejects on failure. */
export async function runNode(name: string, args: string[], timeoutMs: number, opts: SpawnOptions = {}): Promise<Record<string, unknown>> {
  const p = spawnNode(name, args, opts);
  const t = setTimeout(() => p.child.kill('SIGKILL'), timeoutMs);
  const code = await p.exited;
  clearTimeout(t);
  const last = p.lines.filter((l) => l.rec.result !== undefined).at(-1);
  if (code !== 0 || !last) throw new Error(`${name} failed (exit ${code}${code === null ? ', killed after timeout' : ''}): ${p.stderrTail().slice(-1500)}`);
  return last.rec.result as Record<string, unknown>;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
