// `npm run bench [-- --quick]`: raw TCP, the peers (udx-native, hyperdht, holesail), our
// architecture on udx-native (udx-proxy: the native-transport evaluation), the floor, mpyc-agent (direct, relay over UDP, relay over WebSocket) and a WebRTC data
// channel, side by side, interleaved round-robin so that
// machine drift hits every system alike; medians over rounds. Conditions: loopback, and
// as root an emulated WAN in network namespaces (20 ms RTT; 20 ms RTT + 2 % loss).
// Prints a markdown table (ratios against raw TCP) and the verdicts of issue 16's targets; writes
// bench/results/<timestamp>.json and .svg (latency distribution per system and condition).
//
// Options: see USAGE below (also printed by --help).
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync, existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { killAll } from './lib/proc.js';
import { markdownTable, summarize, CONDITION_LABEL, type ConditionId, type ConditionSummary, type RelayScale } from './report.js';
import { verdicts, verdictText, type CostBaseline } from './verdicts.js';
import { latencySvg } from './svg.js';
import { runRound } from './rounds.js';
import { DHT_SYSTEMS, LOOPBACK_HOSTS, SYSTEMS, SYSTEM_LABEL, setupFixture, teardownFixture, type Hosts, type RoundResult, type SystemId, type Workload } from './systems.js';
import { createWan, type Wan } from './wan.js';
import { summarizeProfiles } from './profile.js';
import { breakdownTable, pooled } from './stage-report.js';

const USAGE = `usage: npm run bench [-- OPTIONS]   (or node dist/bench/run.js OPTIONS)

Options:
  --quick              small sample counts (< 2 minutes including WAN)
  --rounds N           rounds per condition (each round runs every system once)
  --systems a,b        subset of tcp,udx,hyperdht,holesail,udx-proxy,floor,direct,relay-udp,relay-ws,webrtc
  --conditions a,b     subset of loopback,wan20,wan20loss2 (WAN ones need root)
  --no-wan             loopback only
  --no-relay           skip the relay forwarding measurement (bench/relay-forward.ts: relay
                       vs bare forwarder packets/s, --workers 1,2 scaling)
  --relay-scale        with it also the relay's RSS with 10k registered agents (minutes)
  --record-baseline    write this run's agent cost relative to holesail's to
                       bench/baseline.json (the goal-7 "halve both" reference)
  --profile DIR        run the agents with --cpu-prof into DIR/<system>/ and print top frames
  --ping N --bulk BYTES --mpc-rounds N   override the workload sizes (0 skips bulk / MPC),
                       e.g. to profile the agents during the ping-pong only
  --trace DIR          run the agents with MPYC_TRACE (src/common/stage-trace.ts) into
                       DIR/<condition>/<system>/<round>/ and print the per-stage latency table
  --out DIR            results directory (default bench/results)
  --help               this text
`;

/** a bad command line: printed without a stack, exit code 2 */
class UsageError extends Error {}

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

interface Plan { rounds: number; wanRounds: number; loop: Workload; wan: Workload }

function plan(quick: boolean, profileDir: string | null): Plan {
  return quick
    ? { rounds: 2, wanRounds: 1,
      loop: { pingN: 600, pingWarm: 60, bulkBytes: 4e6, bulkSeconds: 1, mpcRounds: 100, profileDir },
      wan: { pingN: 40, pingWarm: 5, bulkBytes: 0, bulkSeconds: 0, mpcRounds: 30, profileDir } }
    : { rounds: 5, wanRounds: 3,
      loop: { pingN: 10000, pingWarm: 1000, bulkBytes: 50e6, bulkSeconds: 10, mpcRounds: 1000, profileDir },
      wan: { pingN: 500, pingWarm: 20, bulkBytes: 0, bulkSeconds: 0, mpcRounds: 300, profileDir } };
}

const log = (msg: string): void => { process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`); };

async function runCondition(cond: ConditionId, hosts: Hosts, rounds: number, w: Workload, systems: SystemId[]): Promise<RoundResult[]> {
  const fixture = await setupFixture(hosts, cond, systems.some((s) => DHT_SYSTEMS.includes(s)));
  const results: RoundResult[] = [];
  try {
    for (let r = 0; r < rounds; r++) {
      // rotate the order each round so no system always runs first (or right after another)
      const order = systems.map((_, i) => systems[(i + r) % systems.length]!);
      for (const s of order) {
        const t = performance.now();
        let res: RoundResult;
        try {
          res = await runRound(s, w, fixture, log);
        } catch (err) {
          const lines = (err instanceof Error ? err.message : String(err)).split('\n').filter((l) => l.trim());
          res = { system: s, error: lines[0]! + (lines.length > 1 ? ` — ${lines.at(-1)!.trim().slice(0, 300)}` : '') };
          log(`  ${cond} round ${r + 1}: ${SYSTEM_LABEL[s]} FAILED: ${err instanceof Error ? err.message.slice(0, 2000) : String(err)}`);
        }
        results.push(res);
        if (!res.error) log(`  ${cond} round ${r + 1}/${rounds}: ${SYSTEM_LABEL[s]} done in ${((performance.now() - t) / 1000).toFixed(1)} s ${JSON.stringify(res.phaseMs ?? {})}`);
      }
    }
  } finally {
    await teardownFixture(fixture);
  }
  return results;
}

/**
 * bench/relay-forward.ts in a child process (it runs the relay in its own child): relay
 * vs bare forwarder packets/s and the worker scaling; with `withRss` also the RSS with 10k agents.
 */
async function relayScale(quick: boolean, withRss: boolean, outDir: string): Promise<RelayScale> {
  const file = join(outDir, `.relay-${process.pid}.json`);
  const script = join(dirname(fileURLToPath(import.meta.url)), 'relay-forward.js');
  const { spawnNode } = await import('./lib/proc.js');
  const p = spawnNode('relay-forward', [script, '--seconds', quick ? '1' : '5', '--agents', withRss ? '10000' : '0', '--workers', '1,2', '--json', file]);
  const timer = setTimeout(() => p.child.kill('SIGKILL'), 300_000);
  const code = await p.exited;
  clearTimeout(timer);
  try {
    if (code !== 0) throw new Error(`exit ${code}: ${p.stderrTail().slice(-300)}`);
    const j = JSON.parse(readFileSync(file, 'utf8')) as { forwardedPps: number; bareNodeUdpForwarderPps: number; rssWithAgentsMB: number; registeredAgents: number; workers?: RelayScale['workers'] };
    return { pps: j.forwardedPps, floorPps: j.bareNodeUdpForwarderPps, workers: j.workers,
      ...(withRss ? { rssMbWith10k: (j.rssWithAgentsMB * 2 ** 20) / 1e6, agents: j.registeredAgents } : {}) };
  } catch (e) {
    return { error: `relay bench failed: ${e instanceof Error ? e.message : String(e)}` };
  } finally {
    rmSync(file, { force: true });
  }
}

const BASELINE_FILE = join(repoRoot, 'bench/baseline.json');

function readBaseline(): CostBaseline | null {
  try { return JSON.parse(readFileSync(BASELINE_FILE, 'utf8')) as CostBaseline; } catch { return null; }
}

/** Records this run's agent cost relative to holesail's as the goal-7 baseline. */
function writeBaseline(summaries: ConditionSummary[]): void {
  const loop = summaries.find((c) => c.condition === 'loopback');
  const dir = loop?.systems.find((s) => s.system === 'direct'), hs = loop?.systems.find((s) => s.system === 'holesail');
  if (!dir || !hs) { log('--record-baseline: needs agent direct and holesail on loopback'); return; }
  const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot, encoding: 'utf8' }).trim();
  const b: CostBaseline = { commit, mpcVsHolesail: dir.cpuSPer1000Mpc / hs.cpuSPer1000Mpc, bulkVsHolesail: dir.cpuSPer100MB / hs.cpuSPer100MB };
  writeFileSync(BASELINE_FILE, JSON.stringify(b, null, 1) + '\n');
  log(`goal-7 cost baseline written to ${BASELINE_FILE}: ${JSON.stringify(b)}`);
}

/** Per-stage breakdown of every traced condition and system (rounds pooled). */
function stageTables(traceDir: string): string {
  const parts: string[] = [];
  for (const cond of existsSync(traceDir) ? readdirSync(traceDir) : []) {
    for (const sys of readdirSync(join(traceDir, cond))) {
      const rounds = readdirSync(join(traceDir, cond, sys)).map((r) => join(traceDir, cond, sys, r));
      for (const kind of ['ping', 'mpc'] as const) {
        const b = pooled(rounds, kind);
        if (b.messages) parts.push(breakdownTable(b, `${CONDITION_LABEL[cond as ConditionId] ?? cond}, ${SYSTEM_LABEL[sys as SystemId] ?? sys}: ${kind === 'ping' ? 'ping-pong' : 'MPC round'} messages`));
      }
    }
  }
  return parts.length ? `Per-stage latency (stage traces in ${traceDir}):\n\n${parts.join('\n\n')}` : `no stage traces in ${traceDir} (do the agents have the mark() calls?)`;
}

function relayLine(r: RelayScale | null): string {
  if (!r) return 'relay forwarding: not run (--no-relay)';
  if (r.error) return `relay forwarding: ${r.error}`;
  const workers = typeof r.workers === 'string' ? r.workers : r.workers?.map((w) => `${w.workers} worker${w.workers > 1 ? 's' : ''} ${(w.pps / 1000).toFixed(1)}k`).join(', ') ?? 'not measured';
  return `relay forwarding (1200-byte frames, loopback): relay ${(r.pps! / 1000).toFixed(1)}k packets/s, bare Node forwarder ${(r.floorPps! / 1000).toFixed(1)}k (${(r.pps! / r.floorPps!).toFixed(2)}×); workers: ${workers}`
    + (r.rssMbWith10k !== undefined ? `; ${r.rssMbWith10k.toFixed(1)} MB RSS with ${r.agents} agents` : '');
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    quick: { type: 'boolean' }, rounds: { type: 'string' }, systems: { type: 'string' }, conditions: { type: 'string' },
    'no-wan': { type: 'boolean' }, 'relay-scale': { type: 'boolean' }, 'no-relay': { type: 'boolean' }, 'record-baseline': { type: 'boolean' }, profile: { type: 'string' }, out: { type: 'string' },
    ping: { type: 'string' }, bulk: { type: 'string' }, 'mpc-rounds': { type: 'string' }, trace: { type: 'string' },
    help: { type: 'boolean' },
  } });
  if (values.help) { process.stdout.write(USAGE); return; }
  for (const k of ['rounds', 'ping', 'bulk', 'mpc-rounds'] as const) {
    const v = values[k];
    if (v !== undefined && !(Number.isInteger(Number(v)) && Number(v) >= 0)) throw new UsageError(`--${k} takes a whole number ≥ 0, not "${v}"`);
  }
  const quick = values.quick ?? false;
  const profileDir = values.profile ? resolve(values.profile) : null;
  const traceDir = values.trace ? resolve(values.trace) : null;
  const p = plan(quick, profileDir);
  for (const w of [p.loop, p.wan]) {
    if (values.ping !== undefined) { w.pingN = Number(values.ping); w.pingWarm = Math.min(w.pingWarm, Math.floor(w.pingN / 10)); }
    if (values.bulk !== undefined) w.bulkBytes = Number(values.bulk);
    if (values['mpc-rounds'] !== undefined) w.mpcRounds = Number(values['mpc-rounds']);
  }
  const rounds = values.rounds ? Number(values.rounds) : p.rounds;
  const systems = values.systems ? (values.systems.split(',') as SystemId[]) : SYSTEMS;
  for (const s of systems) if (!SYSTEMS.includes(s)) throw new UsageError(`unknown system ${s}; known: ${SYSTEMS.join(',')}`);
  const isRoot = process.getuid?.() === 0;
  let conds: ConditionId[] = values.conditions ? (values.conditions.split(',') as ConditionId[]) : ['loopback', 'wan20', 'wan20loss2'];
  for (const c of conds) if (!(['loopback', 'wan20', 'wan20loss2'] as string[]).includes(c)) throw new UsageError(`unknown condition ${c}; known: loopback,wan20,wan20loss2`);
  if (values['no-wan']) conds = conds.filter((c) => c === 'loopback');
  if (!isRoot && conds.some((c) => c !== 'loopback')) { log('not root: skipping the emulated-WAN conditions'); conds = conds.filter((c) => c === 'loopback'); }
  const outDir = resolve(values.out ?? join(repoRoot, 'bench/results'));
  mkdirSync(outDir, { recursive: true });
  const started = new Date();
  log(`${quick ? 'quick' : 'full'} run: ${rounds} rounds × [${systems.join(', ')}] × [${conds.join(', ')}]`);

  const summaries: ConditionSummary[] = [];
  const raw: Record<string, RoundResult[]> = {};
  let wan: Wan | null = null;
  try {
    for (const cond of conds) {
      let hosts: Hosts = LOOPBACK_HOSTS;
      let w = p.loop;
      if (cond !== 'loopback') {
        try {
          wan = await createWan(cond === 'wan20loss2' ? 2 : 0);
        } catch (err) {
          log(`skipping ${CONDITION_LABEL[cond]}: cannot build the emulated WAN (${err instanceof Error ? err.message : String(err)})`);
          continue;
        }
        hosts = wan.hosts;
        w = p.wan;
      }
      log(`condition ${CONDITION_LABEL[cond]}`);
      // the floor has no loss recovery: one lost datagram would stall its ping-pong
      const condSystems = cond === 'wan20loss2' ? systems.filter((s) => s !== 'floor') : systems;
      if (traceDir) w = { ...w, traceDir: join(traceDir, cond) };
      const res = await runCondition(cond, hosts, cond === 'loopback' ? rounds : Math.min(rounds, p.wanRounds), w, condSystems);
      raw[cond] = res.map((r) => ({ ...r, pingUs: undefined, mpcRoundMs: undefined, pingSamples: r.pingUs?.length }) as RoundResult);
      summaries.push(summarize(cond, res));
      await wan?.destroy();
      wan = null;
    }
  } finally {
    await killAll();
    await wan?.destroy();
  }
  const relay = values['no-relay'] ? null : (log('relay forwarding (bench/relay-forward)'), await relayScale(quick, values['relay-scale'] ?? false, outDir));
  if (values['record-baseline']) writeBaseline(summaries);
  const vs = verdicts(summaries, relay, readBaseline());

  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}, ${process.platform} ${process.arch}`;
  const header = `mpyc-agent benchmark, ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC, ${quick ? 'quick' : 'full'} run (${rounds} interleaved rounds; medians over rounds), ${machine}`;
  const table = summaries.map(markdownTable).join('\n\n');
  process.stdout.write(`\n${header}\n\n${table}\n\n${relayLine(relay)}\n\nTargets (issue 16 goals 2–7; DESIGN.md §5):\n${verdictText(vs)}\n`);

  const stamp = started.toISOString().replace(/[:.]/g, '-');
  const jsonFile = join(outDir, `${stamp}.json`);
  const svgFile = join(outDir, `${stamp}.svg`);
  writeFileSync(jsonFile, JSON.stringify({ started: started.toISOString(), machine, quick, rounds, systems, conditions: conds, summaries, verdicts: vs, relay, rounds_raw: raw }, null, 1));
  const short = `mpyc-agent bench, ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC, ${quick ? 'quick' : 'full'}, ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, Node ${process.version}`;
  writeFileSync(svgFile, latencySvg(summaries, short));
  process.stdout.write(`\nresults: ${jsonFile}\nchart:   ${svgFile}\n`);

  if (profileDir && existsSync(profileDir)) {
    for (const sys of readdirSync(profileDir)) {
      process.stdout.write(`\nCPU profile, agents of "${sys}" (self time, top frames):\n${summarizeProfiles(join(profileDir, sys), 15)}\n`);
    }
  }
  if (traceDir) process.stdout.write(`\n${stageTables(traceDir)}\n`);
  if (summaries.some((c) => c.systems.some((s) => s.errors.length))) process.exitCode = 1;
}

process.on('SIGINT', () => { void killAll(500).then(() => process.exit(130)); });
main().catch(async (err: unknown) => {
  const usage = err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS_');
  if (usage) process.stderr.write(`bench: ${(err as Error).message}\nrun with --help for the options\n`);
  else process.stderr.write(`bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  await killAll(500);
  process.exitCode = usage ? 2 : 1;
});
