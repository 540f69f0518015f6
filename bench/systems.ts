// The systems under test and one benchmark round of each (the peers' rounds are in
// peers.ts; rounds.ts dispatches and retries stalled rounds). A round of an agent system
// starts fresh `mpyc-agent up` processes (so time-to-first-byte and time-to-direct are
// measured every round), then runs ping-pong, bulk and the 3-party MPC workload through
// them, then stops them. The relay (and, when a peer system runs, the hyperdht testnet)
// is one process per condition, shared by all rounds.
//
// Roles ("hosts"): A = party 0 (the ping/bulk client), B = party 1 (the server standing in
// for MPyC's listener), C = party 2 (MPC only), R = the relay. On loopback they are all the
// root namespace; on the emulated WAN each is its own network namespace.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { freeBases as freeBasesOf } from '../src/common/ports.js';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { queryStatus } from '../src/agent/control.js';
import type { AgentStatus } from '../src/agent/types.js';
import { nowAbs, runNode, sleep, spawnNode, stop, type Proc } from './lib/proc.js';
import { counterDelta, cpuSeconds, rcvbufErrors } from './lib/procstat.js';

const distBench = dirname(fileURLToPath(import.meta.url));
export const PEER = join(distBench, 'peer.js');
export const MPC = join(distBench, 'mpc-party.js');
export const AGENT_CLI = join(distBench, '../src/agent/cli.js');
export const RELAY_CLI = join(distBench, '../src/relay/cli.js');

export type SystemId = 'tcp' | 'udx' | 'hyperdht' | 'holesail' | 'udx-proxy' | 'floor' | 'direct' | 'relay-udp' | 'relay-ws' | 'webrtc';
export const SYSTEMS: SystemId[] = ['tcp', 'udx', 'hyperdht', 'holesail', 'udx-proxy', 'floor', 'direct', 'relay-udp', 'relay-ws', 'webrtc'];
export const SYSTEM_LABEL: Record<SystemId, string> = {
  tcp: 'raw TCP', udx: 'udx-native stream (no crypto, in-process)', hyperdht: 'hyperdht (Noise + udx, in-process)',
  holesail: 'holesail (hyperdht TCP proxy per side)', 'udx-proxy': 'udx-proxy (our architecture on udx-native, sealed chunks)', floor: 'floor: 2 bare Node UDP forwarders', direct: 'agent direct',
  'relay-udp': 'agent via relay (UDP)', 'relay-ws': 'agent via relay (WebSocket)', webrtc: 'WebRTC/SCTP',
};
/** systems that need the local hyperdht testnet */
export const DHT_SYSTEMS: SystemId[] = ['hyperdht', 'holesail'];
export const FORWARDER = join(distBench, 'forwarder.js');

export interface Hosts {
  /** network namespace per role (null: this process's namespace) */
  ns: { a: string | null; b: string | null; c: string | null; r: string | null };
  /** the address each role is reached at by the others */
  ip: { a: string; b: string; c: string; r: string };
  /** address raw-TCP MPC parties dial for every other party (on the WAN: a DNAT alias) */
  mpcHost: string;
  /** fixed MPyC base for raw-TCP MPC parties (the WAN's DNAT rules name its ports) */
  mpcBase?: number;
}

export const LOOPBACK_HOSTS: Hosts = {
  ns: { a: null, b: null, c: null, r: null },
  ip: { a: '127.0.0.1', b: '127.0.0.1', c: '127.0.0.1', r: '127.0.0.1' },
  mpcHost: '127.0.0.1',
};

export interface Workload {
  pingN: number;
  pingWarm: number;
  bulkBytes: number;
  /** the bulk sender stops after this long even if bulkBytes are not sent yet */
  bulkSeconds: number;
  mpcRounds: number;
  /** cpu profile directory for the agent processes (--cpu-prof), or null */
  profileDir: string | null;
  /** stage-trace directory (MPYC_TRACE of the agents: <dir>/<system>/<round>/agent<k>.trace), or null */
  traceDir?: string | null;
}

export interface RoundResult {
  system: SystemId;
  pingUs?: number[];
  bulkMbit?: number;
  /** wall time of the MPC rounds scaled to 1000 rounds (max over the 3 parties) */
  mpcMsPer1000?: number;
  /** the slowest party's first MPC round (ms): includes waiting for connections */
  mpcFirstRoundMs?: number;
  /** per party (index = pid), ms from the last party's start: its own start (≤ 0), all its
   *  connections made (MPyC's start() done), its round 0 done, and its first rounds'
   *  latencies (warm-up included) — where the first round went */
  mpcStartUp?: Array<{ startMs: number; connectedMs: number; round0DoneMs: number; firstRoundsMs: number[] }>;
  /** every MPC round latency of every party after the warm-up rounds (ms) */
  mpcRoundMs?: number[];
  /** spawn of the agents (or WebRTC peers) → first byte at the server (ms) */
  ttfbMs?: number;
  /** the slower of A's and B's 'ready' log line → first byte at the server (ms) */
  ttfbFromReadyMs?: number;
  /** spawn → agent 0 reports peer 1 direct (ms) */
  directMs?: number;
  directFromReadyMs?: number;
  error?: string;
  /** UDP RcvbufErrors counted in the receiving namespace during the bulk transfer */
  rcvbufErrors?: number;
  /** CPU seconds of the proxy processes (agents, holesail, forwarders) per unit of work */
  cpuMsPer1000Pings?: number;
  cpuSPer1000Mpc?: number;
  cpuSPer100MB?: number;
  /** attempts of this round that stalled (a connection made no progress) and were retried */
  stalls?: number;
  /** wall time of each phase of the round (ms), to see where a round's time goes */
  phaseMs?: Record<string, number>;
}

/** Records the wall time since the previous mark under `name`. */
export function phase(res: RoundResult): (name: string) => void {
  let t = performance.now();
  res.phaseMs = {};
  return (name) => { const n = performance.now(); res.phaseMs![name] = Math.round(n - t); t = n; };
}

/** MPC rounds discarded as warm-up (at most a fifth of the rounds) */
export const MPC_WARM_ROUNDS = 5;

/** Keys, session file and relay of one condition. */
export interface Fixture {
  dir: string;
  relay: Proc;
  relayAddress: string;
  keyFiles: string[];
  sessionFile: string;
  hosts: Hosts;
  /** the local hyperdht testnet (only when a DHT system runs) and its bootstrap host:port */
  testnet: Proc | null;
  bootstrap: string;
}

/** n disjoint ranges of 3 ports free on 127.0.0.1 (in fresh namespaces everything is free). */
export function freeBases(n: number): Promise<number[]> {
  return freeBasesOf(n, 3);
}

export const DHT_TESTNET = join(distBench, 'dht-testnet.js');

export async function setupFixture(hosts: Hosts, label: string, withTestnet: boolean): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), `mpyc-bench-${label}-`));
  await cli([RELAY_CLI, 'keygen', '--out', join(dir, 'relay.key')]);
  const relay = spawnNode('relay', [RELAY_CLI, 'serve', '--key', join(dir, 'relay.key'), '--udp', `${hosts.ip.r}:0`, '--http', `${hosts.ip.r}:0`, '--log-level', 'info'], { netns: hosts.ns.r });
  const ready = await relay.waitFor((r) => r.msg === 'listening', 15_000, 'relay listening');
  const relayAddress = String(ready.rec.relayAddress);
  const sessionFile = join(dir, 'session.json');
  await cli([AGENT_CLI, 'session', 'create', sessionFile, '--relay', relayAddress]);
  const keyFiles: string[] = [];
  for (let i = 0; i < 3; i++) {
    const keyFile = join(dir, `party${i}.key`);
    const pub = (await cli([AGENT_CLI, 'keygen', '--out', keyFile])).trim();
    await cli([AGENT_CLI, 'session', 'add', sessionFile, '--pubkey', pub, '--name', `party${i}`]);
    keyFiles.push(keyFile);
  }
  let testnet: Proc | null = null, bootstrap = '';
  if (withTestnet) {
    // on the relay's host: reachable by every party, on the undelayed, lossless link
    testnet = spawnNode('hyperdht testnet', [DHT_TESTNET, '--host', hosts.ip.r], { netns: hosts.ns.r });
    bootstrap = String((await testnet.waitFor((r) => r.msg === 'ready', 30_000, 'testnet ready')).rec.bootstrap);
  }
  return { dir, relay, relayAddress, keyFiles, sessionFile, hosts, testnet, bootstrap };
}

export async function teardownFixture(f: Fixture): Promise<void> {
  if (f.testnet) await stop(f.testnet.child);
  await stop(f.relay.child);
  rmSync(f.dir, { recursive: true, force: true });
}

async function cli(args: string[]): Promise<string> {
  const { spawn } = await import('node:child_process');
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    c.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    c.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    c.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${args.slice(1, 3).join(' ')} failed: ${err.trim()}`))));
  });
}

const nsOf = (h: Hosts, k: number): string | null => [h.ns.a, h.ns.b, h.ns.c][k]!;
const ipOf = (h: Hosts, k: number): string => [h.ip.a, h.ip.b, h.ip.c][k]!;

export async function startServer(host: string, port: number, netns: string | null): Promise<Proc> {
  const p = spawnNode('peer server', [PEER, 'server', '--host', host, '--port', String(port)], { netns });
  await p.waitFor((r) => r.listening !== undefined, 10_000, 'server listening');
  return p;
}

/** What a round measures around its workloads: the proxies' CPU, the receiver's drops. */
export interface Meters {
  /** the proxy processes (agents, holesail, forwarders): their CPU time is the cost */
  proxyPids: number[];
  /** a process in the namespace that receives the bulk transfer */
  receiverPid: number;
}

export async function pingAndBulk(res: RoundResult, w: Workload, host: string, port: number, netns: string | null, mark: (n: string) => void, meters: Meters, clientArgs: string[] = []): Promise<void> {
  const cost = (): (() => number) => counterDelta(() => cpuSeconds(meters.proxyPids));
  const pingCost = cost();
  const ping = await runNode('ping client', [PEER, 'ping', '--host', host, '--port', String(port), '--n', String(w.pingN), '--warm', String(w.pingWarm), ...clientArgs], 180_000, { netns });
  res.pingUs = ping.samplesUs as number[];
  if (meters.proxyPids.length) res.cpuMsPer1000Pings = (pingCost() * 1e6) / (w.pingN + w.pingWarm);
  mark('ping');
  if (w.bulkBytes > 0) {
    const drops = counterDelta(() => rcvbufErrors([meters.receiverPid]));
    const bulkCost = cost();
    const bulk = await runNode('bulk client', [PEER, 'bulk', '--host', host, '--port', String(port), '--bytes', String(w.bulkBytes), '--seconds', String(w.bulkSeconds), ...clientArgs], 180_000, { netns });
    res.bulkMbit = bulk.mbitPerS as number;
    res.rcvbufErrors = drops();
    if (meters.proxyPids.length) res.cpuSPer100MB = (bulkCost() * 1e8) / (bulk.bytes as number);
    mark('bulk');
  }
}

/**
 * The 3-party MPC workload. The parties start together, unless staggerMs > 0: then party 2
 * first, party 1 staggerMs later, party 0 after another staggerMs (for a proxy that does
 * not retry its local connect, so a party must listen before anyone dials it).
 */
export async function mpc(res: RoundResult, w: Workload, hosts: Hosts, bases: number[], dialHost: (k: number) => string, listenHost: (k: number) => string, proxyPids: number[] = [], staggerMs = 0): Promise<void> {
  if (w.mpcRounds <= 0) return;
  const mpcCost = counterDelta(() => cpuSeconds(proxyPids));
  const runs: Array<Promise<Record<string, unknown>>> = [];
  for (const k of [2, 1, 0]) {
    if (staggerMs && k < 2) await sleep(staggerMs);
    runs[k] = runNode(`mpc party ${k}`, [MPC, '--m', '3', '--pid', String(k), '--base', String(bases[k]),
      '--host', dialHost(k), '--listen-host', listenHost(k), '--rounds', String(w.mpcRounds)], 300_000, { netns: nsOf(hosts, k) });
  }
  const parties = await Promise.all(runs);
  // the first rounds also wait for the slowest party's connections (an agent probes a
  // stream's local connect every 2 ms, backing off to MPyC's 100 ms, until MPyC's listener
  // is up): start-up, not rounds
  const skip = Math.min(MPC_WARM_ROUNDS, Math.floor(w.mpcRounds / 5));
  const lat = parties.map((p) => (p.roundLatenciesMs as number[]).slice(skip));
  // first round = from the moment the LAST party started to round 0's end at every party,
  // the same for every system. (A party's own round-0 latency is not comparable: through a
  // proxy its connects succeed at once, so party 0 starts its round clock before the other
  // parties exist, and the figure measures their start-up; over raw TCP its connects wait.)
  const started = Math.max(...parties.map((p) => p.startedAtMs as number));
  const round0Done = Math.max(...parties.map((p) => (p.firstRoundDoneAtMs as number | null) ?? Number.NaN));
  res.mpcFirstRoundMs = round0Done - started;
  const fromLast = (t: number): number => Math.round((t - started) * 100) / 100;
  res.mpcStartUp = parties.map((p) => ({
    startMs: fromLast(p.startedAtMs as number),
    connectedMs: fromLast((p.startedAtMs as number) + (p.connectedMs as number)),
    round0DoneMs: fromLast((p.firstRoundDoneAtMs as number | null) ?? Number.NaN),
    firstRoundsMs: (p.roundLatenciesMs as number[]).slice(0, 6).map((x) => Math.round(x * 100) / 100),
  }));
  const wall = Math.max(...lat.map((l) => l.reduce((a, b) => a + b, 0)));
  res.mpcMsPer1000 = (wall * 1000) / (w.mpcRounds - skip);
  res.mpcRoundMs = lat.flat().map((x) => Math.round(x * 1000) / 1000);
  // all rounds (warm-up too): the proxies' CPU for the whole computation, per 1000 rounds
  if (proxyPids.length) res.cpuSPer1000Mpc = (mpcCost() * 1000) / w.mpcRounds;
}

export async function roundTcp(w: Workload, hosts: Hosts): Promise<RoundResult> {
  const res: RoundResult = { system: 'tcp' };
  const mark = phase(res);
  const [port, base] = await freeBases(2);
  const server = await startServer(hosts.ip.b, port!, hosts.ns.b);
  try {
    await pingAndBulk(res, w, hosts.ip.b, port!, hosts.ns.a, mark, { proxyPids: [], receiverPid: server.child.pid! });
  } finally { await stop(server.child); }
  const b = hosts.mpcBase ?? base!;
  await mpc(res, w, hosts, [b, b, b], () => hosts.mpcHost, (k) => (hosts.ns.a ? '0.0.0.0' : ipOf(hosts, k)));
  mark('mpc');
  return res;
}

export async function roundWebRtc(w: Workload, hosts: Hosts): Promise<RoundResult> {
  const res: RoundResult = { system: 'webrtc' };
  const t0 = nowAbs();
  const answer = spawnNode('webrtc answerer', [PEER, 'rtc', '--role', 'answer', '--bind', hosts.ip.b], { netns: hosts.ns.b });
  const offer = spawnNode('webrtc offerer', [PEER, 'rtc', '--role', 'offer', '--bind', hosts.ip.a, '--n', String(w.pingN), '--warm', String(w.pingWarm),
    '--bytes', String(w.bulkBytes)], { netns: hosts.ns.a });
  // relay the signalling lines each way
  const relaySignals = (from: Proc, to: Proc): void => {
    let seen = 0;
    const pump = setInterval(() => {
      while (seen < from.lines.length) { const l = from.lines[seen++]!; if (l.rec.signal) to.send(l.rec); }
    }, 2);
    void from.exited.then(() => clearInterval(pump));
    void to.exited.then(() => clearInterval(pump));
  };
  relaySignals(offer, answer);
  relaySignals(answer, offer);
  try {
    const r = await offer.waitFor((x) => x.result !== undefined, 300_000, 'WebRTC result');
    const result = r.rec.result as { openAt: number; samplesUs?: number[]; bulk?: { mbitPerS: number } };
    res.ttfbMs = result.openAt - t0;
    res.pingUs = result.samplesUs;
    res.bulkMbit = result.bulk?.mbitPerS;
  } finally {
    await stop(offer.child);
    await stop(answer.child);
  }
  return res;
}

type AgentMode = 'direct' | 'relay-udp' | 'relay-ws';

/** Poll the agents' control sockets until every pair is on the wanted path kind. */
async function waitPaths(controls: string[], want: 'direct' | 'relay', transport: 'udp' | 'ws' | null, timeoutMs: number): Promise<{ pair01At: number }> {
  const deadline = Date.now() + timeoutMs;
  let pair01At = 0;
  let last: AgentStatus[] = [];
  for (;;) {
    try {
      last = await Promise.all(controls.map((c) => queryStatus(c, 2000)));
      const ok = (s: AgentStatus, peer: number): boolean => {
        const p = s.peers.find((x) => x.index === peer);
        return !!p && p.path?.kind === want && (want === 'direct' || p.path.kind !== 'relay' || transport === null || p.path.transport === transport);
      };
      if (!pair01At && ok(last[0]!, 1)) pair01At = nowAbs();
      if (last.every((s) => s.peers.every((p) => ok(s, p.index)))) return { pair01At: pair01At || nowAbs() };
    } catch { /* control socket not up yet */ }
    if (Date.now() > deadline) {
      const paths = last.map((s) => s.peers.map((p) => `${s.ownIndex}→${p.index}: ${p.path ? p.path.kind : 'none'}`).join(', ')).join('; ');
      throw new Error(`paths not all ${want} within ${timeoutMs} ms (${paths || 'no status'})`);
    }
    await sleep(10);
  }
}

export async function roundAgent(mode: AgentMode, w: Workload, f: Fixture): Promise<RoundResult> {
  const hosts = f.hosts;
  const res: RoundResult = { system: mode };
  const mark = phase(res);
  const bases = await freeBases(3);
  const controls = [0, 1, 2].map((k) => join(f.dir, `a${k}-${mode}.sock`));
  // the server stands in for MPyC party 1's listener: agent B delivers to 127.0.0.1:baseB+1
  let server: Proc | null = await startServer('127.0.0.1', bases[1]! + 1, hosts.ns.b);
  const agents: Proc[] = [];
  try {
    // the first-byte client dials agent A's listener for party 1, retrying until it is up
    const ttfb = runNode('ttfb client', [PEER, 'ttfb', '--host', '127.0.0.1', '--port', String(bases[0]! + 1), '--timeout', '30'], 40_000, { netns: hosts.ns.a });
    const traceRound = w.traceDir ? (mkdirSync(join(w.traceDir, mode), { recursive: true }), mkdtempSync(join(w.traceDir, mode, 'r'))) : null;
    const t0 = nowAbs();
    for (let k = 0; k < 3; k++) {
      const args = [AGENT_CLI, 'up', f.sessionFile, '--key', f.keyFiles[k]!, '--bind', ipOf(hosts, k), '--local-base', String(bases[k]),
        '--listen', '127.0.0.1', '--control', controls[k]!, '--log-level', 'info'];
      if (mode !== 'direct') args.push('--relay-only', '--relay-transport', mode === 'relay-ws' ? 'ws' : 'udp');
      const flags = f.hosts && w.profileDir ? ['--cpu-prof', '--cpu-prof-dir', join(w.profileDir, mode), '--cpu-prof-name', `agent${k}-${Date.now()}.cpuprofile`] : [];
      const env = traceRound ? { MPYC_TRACE: join(traceRound, `agent${k}.trace`) } : undefined;
      agents.push(spawnNode(`agent ${k} (${mode})`, args, { netns: nsOf(hosts, k), nodeFlags: flags, env }));
    }
    const ready = await Promise.all(agents.map((a) => a.waitFor((r) => r.msg === 'ready', 20_000, 'agent ready')));
    mark('start');
    await ttfb;
    const first = await server.waitFor((r) => r.firstByteAt !== undefined, 20_000, 'first byte');
    const firstAt = first.rec.firstByteAt as number;
    const readyAB = Math.max(ready[0]!.at, ready[1]!.at);
    res.ttfbMs = firstAt - t0;
    res.ttfbFromReadyMs = firstAt - readyAB;
    const paths = await waitPaths(controls, mode === 'direct' ? 'direct' : 'relay', mode === 'relay-ws' ? 'ws' : mode === 'relay-udp' ? 'udp' : null, 15_000);
    if (mode === 'direct') { res.directMs = paths.pair01At - t0; res.directFromReadyMs = paths.pair01At - readyAB; }
    mark('paths');
    const agentPids = agents.map((a) => a.child.pid!);
    await pingAndBulk(res, w, '127.0.0.1', bases[0]! + 1, hosts.ns.a, mark, { proxyPids: agentPids, receiverPid: agents[1]!.child.pid! });
    await stop(server.child);
    server = null;
    // MPC parties run against their own agent (MPyC -B localBase), exactly like the demo
    await mpc(res, w, hosts, bases, () => '127.0.0.1', () => '127.0.0.1', agentPids);
    mark('mpc');
  } finally {
    if (server) await stop(server.child);
    await Promise.all(agents.map((a) => stop(a.child, 5000)));
    mark('stop');
  }
  return res;
}

/** Ping-pong through two bare Node TCP↔UDP forwarders (bench/forwarder.ts): the floor. */
export async function roundFloor(w: Workload, hosts: Hosts): Promise<RoundResult> {
  const res: RoundResult = { system: 'floor' };
  const mark = phase(res);
  const [ports, udp] = await freeBases(2);
  const server = await startServer('127.0.0.1', ports!, hosts.ns.b);
  const a = spawnNode('forwarder a', [FORWARDER, '--side', 'a', '--tcp-port', String(ports! + 1), '--udp-port', String(udp!), '--peer-udp', String(udp! + 1), '--host', hosts.ip.a, '--peer-host', hosts.ip.b], { netns: hosts.ns.a });
  const b = spawnNode('forwarder b', [FORWARDER, '--side', 'b', '--udp-port', String(udp! + 1), '--peer-udp', String(udp!), '--target-port', String(ports!), '--host', hosts.ip.b, '--peer-host', hosts.ip.a], { netns: hosts.ns.b });
  try {
    await Promise.all([a, b].map((p) => p.waitFor((r) => r.msg === 'ready', 10_000, 'forwarder ready')));
    mark('start');
    await pingAndBulk(res, { ...w, bulkBytes: 0 }, '127.0.0.1', ports! + 1, hosts.ns.a, mark, { proxyPids: [a.child.pid!, b.child.pid!], receiverPid: b.child.pid! });
  } finally {
    await Promise.all([a, b, server].map((p) => stop(p.child)));
  }
  return res;
}
