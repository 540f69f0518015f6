// Builds a planned topology on the real kernel, runs processes inside its namespaces,
// and always tears it down: on teardown(), on process exit, on SIGINT/SIGTERM, and by
// sweeping namespaces left behind by dead runs (their owner pid is in their name).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, writeFileSync, type WriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { planLab, publicAddressOf, planToShell, type Plan } from './plan.js';
import { INTERNET, type LabSpec } from './spec.js';
import { buildDelayBridge } from './bridge-build.js';
import { MINIUPNPD_READY_RE, miniupnpdArgv, miniupnpdConfig } from './miniupnpd.js';
import { probeScript } from './dist.js';

/** Every lab namespace starts with this, then the owner pid, then 'x' and a counter. */
export const NS_PREFIX = 'mlab';
const PREFIX_RE = /^mlab(\d+)x\d+-/;

const STEP_TIMEOUT_MS = 10_000;
/** the lab's own helpers (delay bridges, STUN responder, miniupnpd) live as long as a lab may */
const LONG_HELPER_MS = 60 * 60_000;
const MAX_KEPT_LINES = 200_000;

export interface Capability { ok: boolean; reason?: string }

let capCache: Capability | undefined;
/** Whether this machine can build labs: root, ip netns, nft, ethtool, conntrack, cc. */
export function labCapability(): Capability {
  if (capCache) return capCache;
  const fail = (reason: string): Capability => (capCache = { ok: false, reason });
  if (process.platform !== 'linux') return fail('not Linux');
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return fail('not root (network namespaces need CAP_NET_ADMIN)');
  for (const [cmd, args] of [['ip', ['-V']], ['nft', ['--version']], ['ethtool', ['--version']], ['conntrack', ['--version']], ['cc', ['--version']]] as const) {
    const r = spawnSync(cmd, [...args], { stdio: 'ignore', timeout: 5000 });
    if (r.error || r.status !== 0) return fail(`${cmd} not available`);
  }
  const probe = `${NS_PREFIX}${process.pid}x0-probe`;
  const add = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8', timeout: 5000 });
  if (add.status !== 0) return fail(`ip netns add failed: ${add.stderr.trim()}`);
  const nft = spawnSync('ip', ['netns', 'exec', probe, 'nft', 'add', 'table', 'ip', 'probe'], { encoding: 'utf8', timeout: 5000 });
  spawnSync('ip', ['netns', 'del', probe], { timeout: 5000 });
  if (nft.status !== 0) return fail(`nft in a namespace failed: ${nft.stderr.trim()}`);
  return (capCache = { ok: true });
}

/** Whether miniupnpd (Debian's miniupnpd-nftables) can run here: needed only by labs
 * with a port-mapping router. */
export function portMappingCapability(): Capability {
  const r = spawnSync('miniupnpd', ['--version'], { encoding: 'utf8', timeout: 5000 });
  if (r.error || r.status !== 0) return { ok: false, reason: 'miniupnpd not available (Debian: apt-get install miniupnpd-nftables)' };
  if (!/nftables/.test(r.stdout + r.stderr)) return { ok: false, reason: 'miniupnpd is not the nftables build (Debian: miniupnpd-nftables)' };
  return { ok: true };
}

function run(argv: string[], stdin?: string, timeout = STEP_TIMEOUT_MS): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(argv[0]!, argv.slice(1), { input: stdin, encoding: 'utf8', timeout, stdio: ['pipe', 'pipe', 'pipe'] });
  return { status: r.error ? null : r.status, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? String(r.error) : '') };
}

function mustRun(argv: string[], stdin?: string): string {
  const r = run(argv, stdin);
  if (r.status !== 0) throw new Error(`lab: ${argv.join(' ')} failed (${r.status}): ${r.stderr.trim()}`);
  return r.stdout;
}

function pidAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (err) { return (err as NodeJS.ErrnoException).code === 'EPERM'; }
}

/** Kill every process inside a namespace and delete it. Only used on our own namespaces. */
function destroyNamespace(ns: string): void {
  const pids = run(['ip', 'netns', 'pids', ns]).stdout.split(/\s+/).filter(Boolean).map(Number);
  for (const pid of pids) { try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ } }
  run(['ip', 'netns', 'del', ns]);
}

/** Remove namespaces left by lab runs whose process is gone (killed -9, crashed). */
export function sweepStale(): string[] {
  const out = run(['ip', 'netns', 'list']).stdout;
  const removed: string[] = [];
  for (const line of out.split('\n')) {
    const ns = line.split(' ')[0] ?? '';
    const m = PREFIX_RE.exec(ns);
    if (!m) continue;
    const owner = Number(m[1]);
    if (owner !== process.pid && pidAlive(owner)) continue;
    if (owner === process.pid && [...activeLabs].some((l) => l.plan.namespaces.includes(ns))) continue;
    destroyNamespace(ns);
    removed.push(ns);
  }
  return removed;
}

const activeLabs = new Set<Lab>();
let handlersInstalled = false;
function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', () => { for (const l of [...activeLabs]) l.teardownSync(); });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      for (const l of [...activeLabs]) l.teardownSync();
      process.exit(sig === 'SIGINT' ? 130 : 143);
    });
  }
}

export interface SpawnOptions {
  /** log/process name (default: first argv word) */
  name?: string;
  env?: NodeJS.ProcessEnv;
  /** killed (SIGKILL) after this long; default 5 minutes, every process is bounded */
  timeoutMs?: number;
}

export interface ExitInfo { code: number | null; signal: NodeJS.Signals | null }

export class LabProcess {
  readonly lines: string[] = [];
  readonly stderrLines: string[] = [];
  readonly exited: Promise<ExitInfo>;
  exitInfo?: ExitInfo;
  private waiters: { pred: (line: string) => boolean; resolve: (l: string) => void }[] = [];
  private timer: NodeJS.Timeout;

  constructor(readonly name: string, readonly node: string, readonly child: ChildProcess, readonly logPath: string, log: WriteStream, timeoutMs: number) {
    this.timer = setTimeout(() => this.kill('SIGKILL'), timeoutMs);
    this.timer.unref();
    // Lines are kept for waitForLine/jsonLines up to a cap (a debug-level agent log of a
    // 20 MB run is a few hundred lines; the cap only guards against a runaway process).
    const onData = (target: string[]) => {
      const decoder = new StringDecoder('utf8'); // a chunk may end inside a multi-byte character
      let partial = '';
      return (buf: Buffer): void => {
        log.write(buf);
        partial += decoder.write(buf);
        const parts = partial.split('\n');
        partial = parts.pop() ?? '';
        for (const l of parts) {
          if (target.length < MAX_KEPT_LINES) target.push(l);
          this.notify(l);
        }
      };
    };
    child.stdout!.on('data', onData(this.lines));
    child.stderr!.on('data', onData(this.stderrLines));
    this.exited = new Promise((resolve) => {
      child.on('close', (code, signal) => {
        clearTimeout(this.timer);
        this.exitInfo = { code, signal };
        log.end();
        resolve(this.exitInfo);
      });
    });
  }

  get pid(): number | undefined { return this.child.pid; }
  get running(): boolean { return this.exitInfo === undefined; }

  private notify(line: string): void {
    this.waiters = this.waiters.filter((w) => { if (w.pred(line)) { w.resolve(line); return false; } return true; });
  }

  /** Resolves with the first stdout or stderr line (past or future) matching pred. */
  waitForLine(pred: (line: string) => boolean, ms: number, what = 'line'): Promise<string> {
    const seen = this.lines.find(pred) ?? this.stderrLines.find(pred);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${this.name}: no ${what} within ${ms} ms (log ${this.logPath})`)), ms);
      const w = { pred, resolve: (l: string) => { clearTimeout(t); resolve(l); } };
      this.waiters.push(w);
      void this.exited.then((e) => { clearTimeout(t); if (this.waiters.includes(w)) reject(new Error(`${this.name} exited (${e.code ?? e.signal}) before ${what} (log ${this.logPath})`)); });
    });
  }

  /** Parsed JSON lines of stdout and stderr (pino logs), skipping anything else. */
  jsonLines(): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    for (const l of [...this.lines, ...this.stderrLines]) {
      if (!l.startsWith('{')) continue;
      try { const v: unknown = JSON.parse(l); if (v && typeof v === 'object') out.push(v as Record<string, unknown>); } catch { /* not JSON */ }
    }
    return out;
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (!this.running || this.child.pid === undefined) return;
    try { process.kill(-this.child.pid, signal); } catch { try { this.child.kill(signal); } catch { /* gone */ } }
  }

  /** SIGTERM, then SIGKILL after graceMs. */
  async stop(graceMs = 3000): Promise<ExitInfo> {
    this.kill('SIGTERM');
    const t = setTimeout(() => this.kill('SIGKILL'), graceMs);
    const e = await this.exited;
    clearTimeout(t);
    return e;
  }
}

let labCounter = 0;

export interface LabOptions {
  /** directory for process logs (default: a fresh directory under the OS temp dir) */
  logDir?: string;
}

export class Lab {
  readonly processes: LabProcess[] = [];
  readonly logDir: string;
  private torn = false;

  private constructor(readonly spec: LabSpec, readonly plan: Plan, logDir: string) { this.logDir = logDir; }

  /** Build the topology. Throws (after tearing down what was built) if any step fails. */
  static async create(spec: LabSpec, opts: LabOptions = {}): Promise<Lab> {
    const cap = labCapability();
    if (!cap.ok) throw new Error(`lab not supported here: ${cap.reason}`);
    installHandlers();
    sweepStale();
    const prefix = `${NS_PREFIX}${process.pid}x${++labCounter}-`;
    const plan = planLab(spec, prefix);
    if (plan.portMappers.length > 0) {
      const pm = portMappingCapability();
      if (!pm.ok) throw new Error(`lab not supported here: ${pm.reason}`);
    }
    const logDir = opts.logDir ?? join(tmpdir(), `mpyc-lab-${prefix.slice(0, -1)}-${Date.now()}`);
    mkdirSync(logDir, { recursive: true });
    const lab = new Lab(spec, plan, logDir);
    activeLabs.add(lab);
    try {
      for (const s of plan.steps) mustRun(s.argv, s.stdin);
      if (plan.bridges.length > 0) {
        const bin = buildDelayBridge();
        for (const b of plan.bridges) {
          const p = lab.spawnInNs(b.ns, `bridge-${b.ns.slice(prefix.length)}`, [bin, b.a, b.b, String(b.delayUs), String(b.jitterUs), String(b.seed)], { timeoutMs: LONG_HELPER_MS });
          await p.waitForLine((l) => l === 'ready', 5000, 'delay-bridge ready');
        }
      }
      await lab.startPortMappers();
    } catch (err) {
      await lab.teardown();
      throw err;
    }
    return lab;
  }

  /** The STUN responder on the Internet router, then miniupnpd in each port-mapping
   * router (it asks the responder for its public address before it serves mappings). */
  private async startPortMappers(): Promise<void> {
    const stun = this.plan.stunResponder;
    if (!stun) return;
    const responder = this.spawnInNs(stun.ns, 'stun-responder', [process.execPath, probeScript(), 'stun', String(stun.port), String(LONG_HELPER_MS)], { timeoutMs: LONG_HELPER_MS });
    await responder.waitForLine((l) => l.includes('"ready"'), 10_000, 'STUN responder ready');
    for (const pm of this.plan.portMappers) {
      const conf = join(this.logDir, `miniupnpd-${pm.router}.conf`);
      writeFileSync(conf, miniupnpdConfig({ ...pm, leaseFile: join(this.logDir, `miniupnpd-${pm.router}.leases`) }));
      const p = this.spawnInNs(pm.ns, `miniupnpd-${pm.router}`, miniupnpdArgv(conf, join(this.logDir, `miniupnpd-${pm.router}.pid`)), { timeoutMs: LONG_HELPER_MS });
      await p.waitForLine((l) => MINIUPNPD_READY_RE.test(l), 10_000, 'miniupnpd serving NAT-PMP/PCP');
    }
  }

  /** The process of a lab helper (delay bridge, STUN responder, miniupnpd) by name. */
  helper(name: string): LabProcess | undefined { return this.processes.find((p) => p.name === name); }

  ns(node: string): string {
    const n = this.plan.nodes.get(node);
    if (!n) throw new Error(`lab: no node ${node}`);
    return n.ns;
  }

  /** A node's IPv4 address on its upstream link. */
  address(node: string): string {
    const a = this.plan.nodes.get(node)?.address;
    if (!a) throw new Error(`lab: node ${node} has no IPv4 address`);
    return a;
  }

  /** A node's global IPv6 address on its upstream link: also its public one (no NAT66). */
  address6(node: string): string {
    const a = this.plan.nodes.get(node)?.address6;
    if (!a) throw new Error(`lab: node ${node} has no IPv6 address`);
    return a;
  }

  /** A LAN host's unique-local IPv6 address. */
  ula(node: string): string {
    const a = this.plan.nodes.get(node)?.ula;
    if (!a) throw new Error(`lab: node ${node} has no unique-local address`);
    return a;
  }

  /** A router's IPv4 address on its LAN (where miniupnpd serves NAT-PMP/PCP). */
  lanAddress(router: string): string {
    const a = this.plan.nodes.get(router)?.lanAddress;
    if (!a) throw new Error(`lab: node ${router} has no IPv4 LAN`);
    return a;
  }

  publicAddress(node: string): string { return publicAddressOf(this.plan, this.spec, node); }

  shellScript(): string { return planToShell(this.plan); }

  /** Start a long-running process inside a node's namespace. */
  spawn(node: string, argv: string[], opts: SpawnOptions = {}): LabProcess {
    return this.spawnInNs(this.ns(node), opts.name ?? `${node}-${argv[0]!.split('/').pop()}`, argv, opts);
  }

  private spawnInNs(ns: string, name: string, argv: string[], opts: SpawnOptions): LabProcess {
    if (this.torn) throw new Error('lab: already torn down');
    const safe = name.replace(/[^A-Za-z0-9_.-]/g, '_');
    let logPath = join(this.logDir, `${safe}.log`);
    for (let i = 2; this.processes.some((p) => p.logPath === logPath); i++) logPath = join(this.logDir, `${safe}.${i}.log`);
    const log = createWriteStream(logPath);
    // detached: its own process group, so kill(-pid) reaches anything it starts
    const child = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: opts.env ?? process.env });
    const p = new LabProcess(name, ns, child, logPath, log, opts.timeoutMs ?? 5 * 60_000);
    this.processes.push(p);
    return p;
  }

  /** Run a short command in a node's namespace and wait for it (bounded). */
  exec(node: string, argv: string[], opts: { stdin?: string; timeoutMs?: number } = {}): { status: number | null; stdout: string; stderr: string } {
    return run(['ip', 'netns', 'exec', this.ns(node), ...argv], opts.stdin, opts.timeoutMs ?? STEP_TIMEOUT_MS);
  }

  /** Run a command in a node's namespace asynchronously, collecting its output. */
  async execAsync(node: string, argv: string[], opts: SpawnOptions = {}): Promise<{ code: number | null; stdout: string; stderr: string; process: LabProcess }> {
    const p = this.spawn(node, argv, { timeoutMs: 60_000, ...opts });
    const e = await p.exited;
    return { code: e.code, stdout: p.lines.join('\n'), stderr: p.stderrLines.join('\n'), process: p };
  }

  nft(node: string, ruleset: string): void { mustRun(['ip', 'netns', 'exec', this.ns(node), 'nft', '-f', '-'], ruleset); }
  nftDeleteTable(node: string, family: string, table: string): void { mustRun(['ip', 'netns', 'exec', this.ns(node), 'nft', 'delete', 'table', family, table]); }
  nftList(node: string): string { return mustRun(['ip', 'netns', 'exec', this.ns(node), 'nft', 'list', 'ruleset']); }
  flushConntrack(node: string): void {
    // exit status 1 with "0 flow entries" is not an error
    run(['ip', 'netns', 'exec', this.ns(node), 'conntrack', '-F']);
  }
  conntrackList(node: string): string { return run(['ip', 'netns', 'exec', this.ns(node), 'conntrack', '-L']).stdout; }

  /** Graceful teardown: SIGTERM every process, SIGKILL stragglers, delete namespaces. */
  async teardown(): Promise<void> {
    if (this.torn) return;
    await Promise.all(this.processes.map((p) => p.stop(2000)));
    this.teardownSync();
  }

  /** Synchronous teardown, usable in an 'exit' handler. */
  teardownSync(): void {
    if (this.torn) return;
    this.torn = true;
    for (const p of this.processes) p.kill('SIGKILL');
    // delete in reverse creation order; destroyNamespace also kills anything left inside
    for (const ns of [...this.plan.namespaces].reverse()) destroyNamespace(ns);
    activeLabs.delete(this);
  }

  /** Namespaces of this lab that still exist (for tests of teardown). */
  existingNamespaces(): string[] {
    const list = run(['ip', 'netns', 'list']).stdout.split('\n').map((l) => l.split(' ')[0]);
    return this.plan.namespaces.filter((ns) => list.includes(ns));
  }
}

export { INTERNET };
