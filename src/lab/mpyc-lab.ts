// The product inside a lab: relays and agents started with their real CLIs (dist/) in
// lab namespaces, one session file, MPyC-like parties (mpyc-sim) next to each agent,
// status read through `mpyc-agent status --json`, path events read from the agents' logs.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { distDir } from './dist.js';
import type { Lab, LabProcess } from './lab.js';
import { hasV6 } from './spec.js';
import type { AgentStatus } from '../agent/types.js';
import type { PartyStats } from '../tools/mpyc-sim.js';

export const RELAY_UDP_PORT = 3478;
export const RELAY_HTTP_PORT = 8080;

export interface RelayInfo { node: string; keyFile: string; publicKey: string; address: string; proc?: LabProcess }
export interface PartyInfo {
  index: number; node: string; keyFile: string; publicKey: string; control: string;
  /** extra `mpyc-agent up` arguments */
  args: string[];
  proc?: LabProcess;
  /** Date.now() when the agent was last spawned */
  startedAt?: number;
}

export interface PathEvent { time: number; peer: number; from: string; to: string; reason: string }

export interface MpycLabOptions {
  /** nodes that run a relay; the first is the home relay */
  relays: string[];
  /** which of the relays' addresses the session file gives (default 4; 6 for IPv6-only parties) */
  relayFamily?: 4 | 6;
  /** node of each party, in index order, with extra `up` arguments */
  parties: { node: string; args?: string[] }[];
  /** extra `mpyc-relay serve` arguments for every relay (e.g. a second STUN port) */
  relayArgs?: string[];
  logLevel?: string;
}

function cli(argv: string[]): string {
  const r = spawnSync(process.execPath, argv, { encoding: 'utf8', timeout: 20_000 });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

export class MpycLab {
  readonly relays: RelayInfo[] = [];
  readonly parties: PartyInfo[] = [];
  readonly sessionFile: string;
  private readonly dist: string;

  private constructor(readonly lab: Lab, readonly opts: MpycLabOptions) {
    this.dist = distDir();
    this.sessionFile = join(lab.logDir, 'session.json');
  }

  get agentCli(): string { return join(this.dist, 'src', 'agent', 'cli.js'); }
  get relayCli(): string { return join(this.dist, 'src', 'relay', 'cli.js'); }
  get simCli(): string { return join(this.dist, 'scripts', 'mpyc-sim.js'); }

  /** Keys for every relay and party, and the session file. Starts nothing. */
  static create(lab: Lab, opts: MpycLabOptions): MpycLab {
    const ml = new MpycLab(lab, opts);
    opts.relays.forEach((node, r) => {
      const keyFile = join(lab.logDir, `relay${r}.key`);
      const publicKey = cli([ml.relayCli, 'keygen', '--out', keyFile]).trim();
      const host = opts.relayFamily === 6 ? `[${lab.address6(node)}]` : lab.address(node);
      ml.relays.push({ node, keyFile, publicKey, address: `${publicKey}@${host}:${RELAY_UDP_PORT}/${RELAY_HTTP_PORT}` });
    });
    cli([ml.agentCli, 'session', 'create', ml.sessionFile, ...ml.relays.flatMap((r) => ['--relay', r.address])]);
    opts.parties.forEach((p, index) => {
      const keyFile = join(lab.logDir, `party${index}.key`);
      const publicKey = cli([ml.agentCli, 'keygen', '--out', keyFile]).trim();
      cli([ml.agentCli, 'session', 'add', ml.sessionFile, '--pubkey', publicKey, '--name', `p${index}`]);
      ml.parties.push({ index, node: p.node, keyFile, publicKey, control: join(lab.logDir, `agent${index}.sock`), args: p.args ?? [] });
    });
    return ml;
  }

  async startRelay(r: number): Promise<void> {
    const info = this.relays[r]!;
    // a relay with IPv6 listens on both families (an IPv6 wildcard socket takes IPv4 too)
    const any = hasV6(this.lab.plan.nodes.get(info.node)!.family) ? '[::]' : '0.0.0.0';
    const publicHost = this.opts.relayFamily === 6 ? this.lab.address6(info.node) : this.lab.address(info.node);
    info.proc = this.lab.spawn(info.node, [process.execPath, this.relayCli, 'serve', '--key', info.keyFile,
      '--udp', `${any}:${RELAY_UDP_PORT}`, '--http', `${any}:${RELAY_HTTP_PORT}`, '--public-host', publicHost,
      '--log-level', this.opts.logLevel ?? 'info', ...(this.opts.relayArgs ?? [])], { name: `relay${r}`, timeoutMs: 30 * 60_000 });
    await info.proc.waitForLine((l) => l.includes('"listening"'), 15_000, 'relay listening');
  }

  async stopRelay(r: number, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const p = this.relays[r]!.proc;
    if (!p) return;
    if (signal === 'SIGKILL') { p.kill('SIGKILL'); await p.exited; } else await p.stop();
  }

  startAgent(i: number, extra: string[] = []): LabProcess {
    const p = this.parties[i]!;
    p.startedAt = Date.now();
    p.proc = this.lab.spawn(p.node, [process.execPath, this.agentCli, 'up', this.sessionFile, '--key', p.keyFile,
      '--control', p.control, '--log-level', this.opts.logLevel ?? 'debug', ...p.args, ...extra], { name: `agent${i}`, timeoutMs: 30 * 60_000 });
    return p.proc;
  }

  async waitAgentReady(i: number, ms = 15_000): Promise<void> {
    await this.parties[i]!.proc!.waitForLine((l) => l.includes('"msg":"ready"'), ms, 'agent ready');
  }

  async stopAgent(i: number, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const p = this.parties[i]!.proc;
    if (!p) return;
    if (signal === 'SIGKILL') { p.kill('SIGKILL'); await p.exited; } else await p.stop();
  }

  /** `mpyc-agent status --json` of party i (the control socket is a file: no netns needed). */
  status(i: number): AgentStatus {
    const out = cli([this.agentCli, 'status', '--json', '--control', this.parties[i]!.control]);
    return JSON.parse(out) as AgentStatus;
  }

  tryStatus(i: number): AgentStatus | undefined {
    try { return this.status(i); } catch { return undefined; }
  }

  /** 'path change' events from party i's current agent log, in order. */
  pathEvents(i: number): PathEvent[] {
    const p = this.parties[i]!.proc;
    if (!p) return [];
    return p.jsonLines().filter((j) => j.msg === 'path change').map((j) => ({
      time: Number(j.time), peer: Number(j.peer), from: String(j.from), to: String(j.to), reason: String(j.reason),
    })).sort((a, b) => a.time - b.time);
  }

  /** Log time (ms since the epoch) of party i's current agent's 'agent started' line. */
  agentStartedAt(i: number): number | undefined {
    const j = this.parties[i]!.proc?.jsonLines().find((l) => l.msg === 'agent started');
    return j ? Number(j.time) : undefined;
  }

  /** Start an MPyC-like party next to agent i. */
  startSim(i: number, o: { rounds?: number; bulk?: number; timeoutSec?: number; seed?: string; msgSize?: number } = {}): LabProcess {
    const m = this.parties.length;
    return this.lab.spawn(this.parties[i]!.node, [process.execPath, this.simCli, '-M', String(m), '-I', String(i), '--json',
      '--rounds', String(o.rounds ?? 10), '--bulk', String(o.bulk ?? 65536), '--timeout', String(o.timeoutSec ?? 60),
      '--seed', o.seed ?? 'lab', ...(o.msgSize !== undefined ? ['--msg-size', String(o.msgSize)] : [])], { name: `sim${i}`, timeoutMs: ((o.timeoutSec ?? 60) + 15) * 1000 });
  }

  /** Run every party's sim to completion; rejects with the failing party's output. */
  async runSims(o: Parameters<MpycLab['startSim']>[1] = {}, only?: number[]): Promise<PartyStats[]> {
    const idx = only ?? this.parties.map((p) => p.index);
    const procs = idx.map((i) => this.startSim(i, o));
    const exits = await Promise.all(procs.map((p) => p.exited));
    const bad = exits.findIndex((e) => e.code !== 0);
    if (bad >= 0) {
      const p = procs[bad]!;
      throw new Error(`mpyc-sim ${idx[bad]} failed (${exits[bad]!.code ?? exits[bad]!.signal}): ${p.stderrLines.slice(-5).join(' | ')} ${p.lines.slice(-3).join(' | ')}`);
    }
    return procs.map((p) => {
      const line = [...p.lines].reverse().find((l) => l.startsWith('{'));
      if (!line) throw new Error(`${p.name}: no JSON statistics`);
      return JSON.parse(line) as PartyStats;
    });
  }
}
