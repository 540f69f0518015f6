// What the adversarial tests measure: a process's RSS and CPU seconds (/proc), the
// legitimate pair's MPyC-pattern traffic (runParty through both agents: round latency
// p50/p99 and bulk throughput), and how many fresh agents manage to register with the
// relay meanwhile (the real relay client of the build under test).
import * as dgram from 'node:dgram';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { runParty } from '../../src/tools/mpyc-sim.js';
import { TARGET_DIST, PEER, VICTIM, type World } from './world.js';

/** USER_HZ: /proc/<pid>/stat counts CPU time in these ticks (100 on Linux) */
const CLOCK_TICKS_PER_S = 100;

export interface ProcSample { rssMB: number; peakRssMB: number; cpuS: number; fds: number }

export function sampleProc(pid: number): ProcSample {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // fields after the command name "(...)": state is field 3; utime and stime are 14 and 15
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { rssMB: kb('VmRSS') / 1024, peakRssMB: kb('VmHWM') / 1024, cpuS: (Number(f[11]) + Number(f[12])) / CLOCK_TICKS_PER_S, fds: readdirSync(`/proc/${pid}/fd`).length };
}

export interface LegitLoad { rounds: number; msgSize: number; bulkBytes: number; timeoutMs: number }

/** the legitimate workload of every row: identical before and during each attack */
/**
 * (bulk: 1 MiB, ~20 ms on loopback; at 256 KiB a transfer lasted ~5 ms, still in slow start,
 * and one scheduler hiccup on these 2 shared cores cut its figure by 3×: CI saw baselines of
 * 22–109 MB/s for the same work, and figures during an attack above their baseline as often
 * as below)
 */
export const LEGIT_LOAD: LegitLoad = { rounds: 300, msgSize: 32, bulkBytes: 1024 * 1024, timeoutMs: 20_000 };

/** one run of the workload */
export interface LegitRun { ok: boolean; error?: string; roundsMs: number[]; bulkMBps: number }

/** the workload repeated over a phase */
export interface LegitResult {
  ok: boolean;
  error?: string;
  runs: number;
  /** MPyC round latency (m = 2: one message each way) over every run, ms */
  p50Ms: number;
  p99Ms: number;
  /** the bulk message's throughput, the best run's, MB/s: what the pair can still move (a
   *  hiccup slows one run; an attack that starves the victim slows every run, and stalls
   *  show in the round p99) */
  bulkMBps: number;
  wallMs: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

/** The two MPyC-like parties of the pair, each talking only to its own agent: one run. */
export async function legitRun(w: World, load: LegitLoad = LEGIT_LOAD): Promise<LegitRun> {
  const opts = { m: 2, host: '127.0.0.1', rounds: load.rounds, msgSize: load.msgSize, bulkBytes: load.bulkBytes, timeoutMs: load.timeoutMs, prss: true };
  const ports = (base: number): number[] => [base + VICTIM, base + PEER];
  try {
    const [a] = await Promise.all([
      runParty({ ...opts, pid: 0, ports: ports(w.victim.localBase) }),
      runParty({ ...opts, pid: 1, ports: ports(w.peer.localBase) }),
    ]);
    return { ok: true, roundsMs: a.roundLatenciesMs, bulkMBps: load.bulkBytes / 1e6 / (a.bulkMs / 1000) };
  } catch (err) {
    return { ok: false, error: (err as Error).message.slice(0, 300), roundsMs: [], bulkMBps: 0 };
  }
}

/** runs of the workload per phase, spread evenly over it: the same work in every phase */
export const LEGIT_RUNS_PER_PHASE = 3;

/**
 * The workload LEGIT_RUNS_PER_PHASE times, run i starting at i/LEGIT_RUNS_PER_PHASE of
 * `seconds` (or when run i-1 ends, if later); stops at the first failure.
 */
export async function legitRuns(w: World, seconds: number): Promise<LegitResult> {
  const t0 = performance.now();
  const runs: LegitRun[] = [];
  for (let i = 0; i < LEGIT_RUNS_PER_PHASE && runs.every((r) => r.ok); i++) {
    const wait = t0 + (i * seconds * 1000) / LEGIT_RUNS_PER_PHASE - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    runs.push(await legitRun(w));
  }
  const failed = runs.find((r) => !r.ok);
  const lat = runs.flatMap((r) => r.roundsMs).sort((x, y) => x - y);
  const bulk = runs.filter((r) => r.ok).map((r) => r.bulkMBps).sort((x, y) => x - y);
  return {
    ok: !failed, ...(failed ? { error: failed.error } : {}), runs: runs.length,
    p50Ms: percentile(lat, 0.5), p99Ms: percentile(lat, 0.99), bulkMBps: bulk.length ? bulk[bulk.length - 1]! : 0,
    wallMs: performance.now() - t0,
  };
}

interface ProbeClient { state: string; start(): void; close(): void; handleDatagram(b: Uint8Array): void }
type ProbeClientCtor = new (o: Record<string, unknown>) => ProbeClient;
type KeyGen = () => { publicKey: Uint8Array; privateKey: Uint8Array };

/**
 * `count` fresh agents (new keys, own sockets) register with the relay over UDP during
 * `windowMs`; returns how many made it. Uses the relay client of the build under test so
 * it speaks that build's protocol version.
 */
export async function probeRegistrations(w: World, count: number, windowMs: number): Promise<number> {
  const { RelayClient } = await import(join(TARGET_DIST, 'src/relay/client.js')) as { RelayClient: ProbeClientCtor };
  const { generateKeyPair } = await import(join(TARGET_DIST, 'src/noise/index.js')) as { generateKeyPair: KeyGen };
  const probes = await Promise.all(Array.from({ length: count }, async () => {
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    const c = new RelayClient({ relayKey: w.relay.key, keyPair: generateKeyPair(), transport: 'udp', sendUdp: (f: Uint8Array) => sock.send(f, w.relay.udp.port, w.relay.udp.address) });
    sock.on('message', (m) => { if (m.length > 0 && m[0]! >= 0x20 && m[0]! <= 0x3f) c.handleDatagram(m); });
    return { c, sock };
  }));
  for (const p of probes) p.c.start();
  const t0 = performance.now();
  while (performance.now() - t0 < windowMs && probes.some((p) => p.c.state !== 'registered')) await new Promise((r) => setTimeout(r, 20));
  const n = probes.filter((p) => p.c.state === 'registered').length;
  for (const p of probes) { p.c.close(); p.sock.close(); }
  return n;
}
