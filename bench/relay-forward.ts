// Relay benchmark (issue 3 item 8, issue 16 goal 6):
//  1. forwarded packets/s: the relay (src/relay/server.ts) runs alone in a child process;
//     this process is the load generator (several sender→receiver pairs, 1200-byte
//     payloads). The rate is read from the relay's own counter: what the relay forwarded.
//  2. the floor: a bare Node UDP forwarder (recv → send, no relay logic) in its own child
//     under the same load. Relay and floor phases alternate (--repeat times, the order
//     rotated), so machine drift hits both alike; the result has each one's median and
//     the ratio relay / floor (goal 6: ≥ 0.8).
//  3. with --workers 1,2: `mpyc-relay serve --workers N` (the CLI; N worker processes
//     behind one port) in the same alternation, packets/s by the relay's summed counter, CPU µs
//     per packet for the whole relay and for each of its processes (primary, each worker),
//     the load generator's own (this process), and the drops the relay counted; a relay
//     whose serve has no --workers yet is reported as "not supported by this relay".
//     --workers-only runs just this scaling curve. --pin-generator CPU pins this process
//     (senders and receivers) to that CPU once the relays run (they keep every CPU): on a
//     small machine the generator and the workers otherwise compete for the same cores.
//     --pin-relay CPUS runs the relays with --workers on those CPUs only (taskset -c): N
//     workers on one core forwarding what one worker does there means the workers add no
//     per-packet cost, so N workers on N free cores forward N times as much.
//  4. relay RSS with --agents registered agents (each from its own 127.1.x.y address; 0 skips
//     it), once settled (see settledRss) and right after the registrations. Every agent of
//     the bench sends an accept set after registering, as agents do (the forwarding pairs
//     accept each other, the --agents ones two keys each: a 3-party session).
// Every phase reports packets/s and the CPU the forwarder process(es) spent per forwarded
// packet (user + system, from /proc): on a shared machine how much CPU a process is given
// in a phase varies more than the code does, so CPU per packet is the stable figure of one
// core's capacity (1e6 / µs). The relays run with BENCH_LIMITS: every budget that would
// bite a benchmark's one-address load (forwarding per source, destination and relay;
// handshakes per source and relay-wide) is off, so what is measured is the forwarding
// path itself, and 10k registrations from one address do not wait on the handshake budget.
// Usage: node dist/bench/relay-forward.js [--pairs 8] [--seconds 5] [--repeat 3] [--agents 10000] [--workers 1,2]
//   [--workers-only] [--pin-generator CPU] [--compare BUILD] [--json FILE] (--help)
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as dgram from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { PeerKey } from '../src/common/peer-key.js';
import { RelayServer, type RelayLimits } from '../src/relay/server.js';
import { HandshakeState, generateKeyPair, type KeyPair } from '../src/noise/index.js';
import {
  FRAME_ACCEPT_ACK, FRAME_ACCEPT_FROM, FRAME_CHALLENGE, FRAME_REGISTERED, NOISE_PROTOCOL, acceptFromBody, decodeFrame,
  decodeRegisteredPayload, encodeHello,
  encodeRegister, encodeSend, registrationPrologue, SEND_HEADER_SIZE,
} from '../src/relay/wire.js';
import { controlKeysOf, type ControlKeys } from '../src/relay/control-auth.js';
import { median } from './lib/stats.js';
import { cpuSeconds } from './lib/procstat.js';
import { createUdpSocket } from '../src/common/udp-socket.js';

/** The relay's budgets for a benchmark: the per-agent rate far above the offered load, every
 *  budget a one-address load generator would exhaust off (0). */
const BENCH_LIMITS: Partial<RelayLimits> = {
  ratePps: 10_000_000, burst: 5_000_000, sourceRatePps: 0, destRatePps: 0, globalRatePps: 0, handshakeRatePerSource: 0, handshakeRateGlobal: 0,
};
/** the same as `mpyc-relay serve` flags */
const BENCH_LIMIT_FLAGS = ['--rate', '10000000', '--burst', '5000000', '--source-rate', '0', '--dest-rate', '0', '--global-rate', '0',
  '--handshake-rate', '0', '--handshake-rate-global', '0',
  // as the in-process relay's expiryS: the senders register once and send no keepalive, and a
  // full run's alternation outlasts the default 35 s expiry (every later repeat was no_peer)
  '--expiry', '600'];

async function childRelay(): Promise<void> {
  const server = new RelayServer({
    keyPair: generateKeyPair(), udp: { host: '127.0.0.1', port: 0 }, http: { host: '127.0.0.1', port: 0 },
    ...BENCH_LIMITS, maxAgents: 200_000, expiryS: 600,
  });
  const ports = await server.start();
  process.stdout.write(JSON.stringify({ ...ports, key: server.publicKey }) + '\n');
  process.on('message', (m: unknown) => {
    // measure steady state: collect the registrations' garbage first (child runs with --expose-gc)
    if (m === 'stats') (globalThis as { gc?: () => void }).gc?.();
    if (m === 'stats') process.send!({ forwarded: server.counters.forwardedPackets, agents: server.agentCount, drops: server.counters.drops, memory: process.memoryUsage() });
  });
  process.on('disconnect', () => process.exit(0));
}

/**
 * Floor: a bare Node UDP forwarder (recv -> send to one fixed port), no relay logic. Its
 * socket answers IP literals in the same call like the relay's (createUdpSocket), so the
 * ratio measures the relay's own logic, not a lookup tick the floor would pay and it not.
 */
async function childRaw(): Promise<void> {
  const sock = createUdpSocket({ type: 'udp4', recvBufferSize: 8 << 20, sendBufferSize: 8 << 20 });
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  let dest = 0, forwarded = 0;
  sock.on('message', (m) => { if (dest) { sock.send(m, dest, '127.0.0.1'); forwarded++; } });
  process.stdout.write(JSON.stringify({ udpPort: sock.address().port }) + '\n');
  process.on('message', (m: unknown) => {
    if (typeof m === 'object' && m && 'dest' in m) dest = (m as { dest: number }).dest;
    if (m === 'stats') process.send!({ forwarded, agents: 0, drops: {} });
  });
  process.on('disconnect', () => process.exit(0));
}

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

function stats(child: ChildProcess): Promise<{ forwarded: number; agents: number; drops: Record<string, number>; memory?: NodeJS.MemoryUsage }> {
  return new Promise((resolve) => { child.once('message', (m) => resolve(m as never)); child.send('stats'); });
}

async function bindSocket(big = true, host = '127.0.0.1'): Promise<dgram.Socket> {
  const s = dgram.createSocket(big ? { type: 'udp4', sendBufferSize: 4 << 20, recvBufferSize: 4 << 20 } : { type: 'udp4' });
  await new Promise<void>((r) => s.bind(0, host, () => r()));
  return s;
}

/**
 * Register `kp` from socket `s` (HELLO retried every 2 s, 10 tries) and, as a real agent
 * does, tell the relay whom to accept packets from (ACCEPT_FROM `accept`, retried every
 * second until ACCEPT_ACK); resolves with the registration token when both are done.
 */
function register(s: dgram.Socket, port: number, relayKey: Uint8Array, kp: KeyPair, accept: readonly Uint8Array[]): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    let hs: HandshakeState | undefined;
    let ctl: ControlKeys | undefined;
    let token: Uint8Array | undefined;
    let tries = 0;
    let timer: NodeJS.Timeout;
    const fail = (why: string): void => { s.off('message', onMsg); ctl?.destroy(); reject(new Error(why)); };
    const hello = (): void => {
      if (++tries > 10) { fail('registration timed out'); return; }
      hs = undefined;
      s.send(encodeHello(), port, '127.0.0.1');
      timer = setTimeout(hello, 2000);
    };
    const acceptFrom = (): void => {
      if (++tries > 5) { fail('no ACCEPT_ACK'); return; }
      s.send(ctl!.seal(FRAME_ACCEPT_FROM, acceptFromBody(accept)), port, '127.0.0.1');
      timer = setTimeout(acceptFrom, 1000);
    };
    const onMsg = (m: Buffer): void => {
      if (m[0] === FRAME_CHALLENGE && !hs && !ctl) {
        const cookie = m.subarray(4, 28);
        hs = new HandshakeState({ protocolName: NOISE_PROTOCOL, initiator: true, prologue: registrationPrologue(cookie), staticKey: kp, remoteStaticKey: relayKey });
        s.send(encodeRegister(cookie, hs.writeMessage(new Uint8Array(0))), port, '127.0.0.1');
      } else if (m[0] === FRAME_REGISTERED && hs && !ctl) {
        token = decodeRegisteredPayload(hs.readMessage(m.subarray(4)))?.token;
        if (!token) { fail('REGISTERED without a token'); return; }
        ctl = controlKeysOf(hs);
        clearTimeout(timer);
        tries = 0;
        acceptFrom();
      } else if (m[0] === FRAME_ACCEPT_ACK && ctl) {
        const d = decodeFrame(m);
        if (!d.ok || d.frame.type !== FRAME_ACCEPT_ACK || !ctl.open(d.frame)) return;
        clearTimeout(timer);
        s.off('message', onMsg);
        ctl.destroy();
        resolve(token!);
      }
    };
    s.on('message', onMsg);
    hello();
  });
}

const RELAY_CLI = fileURLToPath(new URL('../src/relay/cli.js', import.meta.url));

/** Whether this relay's `serve` takes --workers (read from its help text). */
function relaySupportsWorkers(): boolean {
  const r = spawnSync(process.execPath, [RELAY_CLI, 'serve', '--help'], { encoding: 'utf8', timeout: 20_000 });
  return /--workers\b/.test(`${r.stdout}${r.stderr}`);
}

/**
 * One phase's result: packets/s forwarded; the forwarder's CPU µs per forwarded packet (all
 * its processes), each process's share of it (a relay with workers: the primary first, then
 * each worker), and the load generator's (this process: senders and receivers).
 */
interface Round { pps: number; cpuUsPerPacket: number; perProcess: number[]; generatorUsPerPacket: number }

/** A forwarder with its load generator ready: run() offers the load for `seconds`. */
interface Target { run(seconds: number): Promise<Round>; close(): void }

/** A relay with workers' /metrics once its sums are current: each worker reports every second, the primary sums every second. */
async function settledMetrics(httpPort: number): Promise<string> {
  await new Promise((r) => setTimeout(r, 2100));
  return (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
}

async function relayForwardedOf(httpPort: number): Promise<number> {
  const m = /^mpyc_relay_forwarded_packets_total (\d+)$/m.exec(await settledMetrics(httpPort));
  if (!m) throw new Error('relay /metrics without mpyc_relay_forwarded_packets_total');
  return Number(m[1]);
}

/** The drops a relay with workers counted. */
async function relayDropsOf(httpPort: number): Promise<Record<string, number>> {
  const text = await settledMetrics(httpPort);
  const drops: Record<string, number> = {};
  for (const m of text.matchAll(/^mpyc_relay_dropped_total\{reason="([a-z_]+)"\} (\d+)$/gm)) if (m[2] !== '0') drops[m[1]!] = Number(m[2]);
  return drops;
}

/** `pid` and its child processes (a relay with --workers: the primary and its workers). */
function processTree(pid: number): number[] {
  let kids: number[] = [];
  try { kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number); } catch { /* gone */ }
  return [pid, ...kids];
}

/** Runs `offer` and measures the forwarded packets (`count` before and after) and the CPU of `pid`'s tree. */
async function measure(pid: number, count: () => Promise<number>, offer: () => Promise<number>): Promise<Round> {
  const pids = processTree(pid);
  const cpuEach = (): number[] => pids.map((p) => cpuSeconds([p]));
  const self = (): number => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; };
  const [n0, cpu0, gen0] = [await count(), cpuEach(), self()];
  const elapsed = await offer();
  // CPU first: a count may wait for the relay's figures to arrive (a relay with workers sums them each second)
  const [cpu1, gen1] = [cpuEach(), self()];
  const n1 = await count();
  const forwarded = n1 - n0;
  const perPacket = (seconds: number): number => (forwarded > 0 ? (seconds * 1e6) / forwarded : NaN);
  const perProcess = cpu1.map((c, i) => perPacket(c - cpu0[i]!));
  return { pps: forwarded / elapsed, cpuUsPerPacket: perProcess.reduce((a, b) => a + b, 0), perProcess, generatorUsPerPacket: perPacket(gen1 - gen0) };
}

interface Sender { s: dgram.Socket; frame: Uint8Array; port: number }

/** Sends every sender's frame in bounded bursts for `seconds`, yielding between bursts so sends drain. */
async function blast(senders: Sender[], seconds: number): Promise<number> {
  const t0 = performance.now(), deadline = t0 + seconds * 1000;
  await new Promise<void>((resolve) => {
    const burst = (): void => {
      if (performance.now() >= deadline) { resolve(); return; }
      for (let k = 0; k < 64; k++) for (const x of senders) x.s.send(x.frame, x.port, '127.0.0.1');
      setImmediate(burst);
    };
    burst();
  });
  const elapsed = (performance.now() - t0) / 1000;
  await new Promise((r) => setTimeout(r, 300)); // let the last frames arrive
  return elapsed;
}

/** `pairs` registered sender → receiver pairs at a relay (the relays count what they forward). */
async function relayPairs(udpPort: number, relayKey: Uint8Array, pairs: number): Promise<{ senders: Sender[]; close(): void }> {
  const senders: Sender[] = [];
  const receivers: dgram.Socket[] = [];
  for (let i = 0; i < pairs; i++) {
    const a = await bindSocket(), b = await bindSocket();
    const ka = generateKeyPair(), kb = generateKeyPair();
    const token = await register(a, udpPort, relayKey, ka, [kb.publicKey]);
    await register(b, udpPort, relayKey, kb, [ka.publicKey]);
    b.on('message', () => { /* read, as an agent does */ });
    senders.push({ s: a, frame: encodeSend(token, kb.publicKey, new Uint8Array(1200).fill(i)), port: udpPort });
    receivers.push(b);
  }
  return { senders, close: () => { for (const x of [...senders.map((y) => y.s), ...receivers]) x.close(); } };
}

/** The relay child, counted by its own forwarded counter. */
async function relayTarget(child: ChildProcess, udpPort: number, relayKey: Uint8Array, pairs: number): Promise<Target> {
  const load = await relayPairs(udpPort, relayKey, pairs);
  return {
    run: (seconds) => measure(child.pid!, async () => (await stats(child)).forwarded, () => blast(load.senders, seconds)),
    close: load.close,
  };
}

/** The floor: a bare Node forwarder child (datagrams of a SEND frame's size), counted by its own counter. */
async function floorTarget(pairs: number): Promise<Target> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--child-raw'], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  const info = await new Promise<{ udpPort: number }>((resolve, reject) => {
    child.stdout!.once('data', (d) => { try { resolve(JSON.parse(String(d))); } catch (e) { reject(e); } });
    child.once('exit', (c) => reject(new Error(`floor child exited ${c}`)));
  });
  const recv = await bindSocket();
  recv.on('message', () => { /* discard */ });
  child.send({ dest: recv.address().port });
  const senders = (await Promise.all(Array.from({ length: pairs }, () => bindSocket()))).map((s) => ({ s, frame: new Uint8Array(SEND_HEADER_SIZE + 1200), port: info.udpPort }));
  return {
    run: (seconds) => measure(child.pid!, async () => (await stats(child)).forwarded, () => blast(senders, seconds)),
    close: () => { for (const x of senders) x.s.close(); recv.close(); child.kill('SIGKILL'); },
  };
}

/** `mpyc-relay serve --workers N` on loopback; packets/s the relay forwarded. */
async function cliRelayTarget(workers: number, pairs: number, pinRelay: string | undefined): Promise<Target & { drops(): Promise<Record<string, number>> }> {
  const dir = mkdtempSync(join(tmpdir(), 'relay-workers-'));
  const keyFile = join(dir, 'relay.key');
  const kg = spawnSync(process.execPath, [RELAY_CLI, 'keygen', '--out', keyFile], { encoding: 'utf8', timeout: 20_000 });
  if (kg.status !== 0) { rmSync(dir, { recursive: true, force: true }); throw new Error(`relay keygen failed: ${kg.stderr}`); }
  const serve = [process.execPath, RELAY_CLI, 'serve', '--key', keyFile, '--workers', String(workers), '--udp', '127.0.0.1:0', '--http', '127.0.0.1:0',
    ...BENCH_LIMIT_FLAGS, '--log-level', 'info', '--log-format', 'json'];
  // taskset execs the relay in place (same pid); its workers inherit the CPU set
  const argv = pinRelay === undefined ? serve : ['taskset', '-c', pinRelay, ...serve];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  const cleanup = (): void => { child.kill('SIGKILL'); rmSync(dir, { recursive: true, force: true }); };
  try {
    const { relayAddress, httpPort } = await new Promise<{ relayAddress: string; httpPort: number }>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('relay with workers: no "listening" line within 20 s')), 20_000);
      const onData = (d: Buffer): void => {
        for (const line of String(d).split('\n')) {
          let r: { msg?: string; relayAddress?: string; httpPort?: number };
          try { r = JSON.parse(line) as typeof r; } catch { continue; }
          if (r.msg === 'listening' && r.relayAddress && r.httpPort) { clearTimeout(t); resolve({ relayAddress: r.relayAddress, httpPort: r.httpPort }); }
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.once('exit', (c) => { clearTimeout(t); reject(new Error(`relay with workers exited ${c}`)); });
    });
    // KEY@host:udpPort/httpPort
    const m = /^([^@]+)@[^:]+:(\d+)/.exec(relayAddress);
    if (!m) throw new Error(`unexpected relay address ${relayAddress}`);
    const load = await relayPairs(Number(m[2]), PeerKey.fromText(m[1]!, 'relay key').bytes, pairs);
    return {
      // what the relay forwarded (its summed counter); the receivers may lose some in full socket buffers
      run: (seconds) => measure(child.pid!, () => relayForwardedOf(httpPort), () => blast(load.senders, seconds)),
      drops: () => relayDropsOf(httpPort),
      close: () => { load.close(); cleanup(); },
    };
  } catch (e) { cleanup(); throw e; }
}

/**
 * RSS of the relay child once its memory has settled: a burst of registrations grows V8's
 * young generation to its maximum (tens of MB, empty after a GC but still resident) until
 * V8's memory reducer shrinks it a few seconds after the burst. What a long-running relay
 * holds for its agents is the settled figure; the one right after the burst is reported
 * beside it. Polls every 2 s (after a GC) until three readings agree within 1 MB, at least
 * 10 s and at most 40 s.
 */
async function settledRss(child: ChildProcess): Promise<number> {
  const readings: number[] = [];
  const t0 = performance.now();
  for (;;) {
    await new Promise((r) => setTimeout(r, 2000));
    await stats(child); // a GC first
    readings.push(rssOf(child.pid!));
    const last = readings.slice(-3);
    const elapsed = performance.now() - t0;
    if (elapsed >= 40_000 || (elapsed >= 10_000 && last.length === 3 && Math.max(...last) - Math.min(...last) < 2 ** 20)) return readings.at(-1)!;
  }
}

interface AgentsResult { rssBurst: number; rss: number; heapUsed: number; external: number; registered: number; failures: number; perS: number }

/** The relay child's memory with `agents` more registered agents (50 registrations at a time). */
async function rssWithAgents(child: ChildProcess, udpPort: number, relayKey: Uint8Array, agents: number): Promise<AgentsResult> {
  const socks: dgram.Socket[] = [];
  let failures = 0;
  const t1 = performance.now();
  try {
    for (let i = 0; i < agents; i += 50) {
      await Promise.all(Array.from({ length: Math.min(50, agents - i) }, async (_, j) => {
        // each agent from its own address (all of 127/8 is loopback), as on the Internet:
        // the relay keeps per-address state too
        const n = i + j;
        const s = await bindSocket(false, `127.1.${(n >> 8) & 0xff}.${n & 0xff}`);
        socks.push(s);
        // an accept set as a party of a 3-party session sends it: the other two keys
        try { await register(s, udpPort, relayKey, generateKeyPair(), [generateKeyPair().publicKey, generateKeyPair().publicKey]); } catch { failures++; }
      }));
      if (failures > agents / 10) throw new Error(`too many registration failures (${failures})`);
    }
    const perS = agents / ((performance.now() - t1) / 1000);
    await stats(child);
    const rssBurst = rssOf(child.pid!);
    const rss = await settledRss(child);
    const after = await stats(child);
    return { rssBurst, rss, heapUsed: after.memory?.heapUsed ?? NaN, external: after.memory?.external ?? NaN, registered: after.agents, failures, perS };
  } finally {
    for (const s of socks) s.close();
  }
}

/** Every target run `repeat` times for `seconds`, the order rotated each repeat (machine drift hits all alike). */
async function alternate(all: Target[], repeat: number, seconds: number): Promise<Round[][]> {
  const series: Round[][] = all.map(() => []);
  for (let r = 0; r < repeat; r++) {
    for (let i = 0; i < all.length; i++) {
      const k = (i + r) % all.length;
      series[k]!.push(await all[k]!.run(seconds));
    }
  }
  return series;
}

const round2 = (x: number): number => +x.toFixed(2);

/** One worker count's medians: packets/s, CPU µs per packet (all, each process, the generator) and what the relay dropped. */
async function workersRow(n: number, rounds: Round[], target: { drops(): Promise<Record<string, number>> }): Promise<WorkersRow> {
  const each = rounds[0]!.perProcess.map((_, i) => round2(median(rounds.map((x) => x.perProcess[i]!))));
  return {
    workers: n, pps: Math.round(median(rounds.map((x) => x.pps))), cpuUsPerPacket: round2(median(rounds.map((x) => x.cpuUsPerPacket))),
    // a relay with one worker is one process; with N, the primary (routing only) and its workers
    cpuUsPerPacketByProcess: n === 1 ? { relay: each[0]! } : { primary: each[0]!, ...Object.fromEntries(each.slice(1).map((c, i) => [`worker${i}`, c])) },
    generatorUsPerPacket: round2(median(rounds.map((x) => x.generatorUsPerPacket))),
    perRepeatPps: rounds.map((x) => Math.round(x.pps)), relayDrops: await target.drops(),
  };
}

interface WorkersRow {
  workers: number; pps: number; cpuUsPerPacket: number; cpuUsPerPacketByProcess: Record<string, number>;
  generatorUsPerPacket: number; perRepeatPps: number[]; relayDrops: Record<string, number>;
}

/** `--pin-generator CPU`: this process (senders and receivers) on that CPU only, the relays spawned before it keep every CPU. */
function pinGenerator(cpu: string | undefined): string | null {
  if (cpu === undefined) return null;
  const r = spawnSync('taskset', ['-pc', cpu, String(process.pid)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`taskset -pc ${cpu}: ${r.stderr || r.error}`);
  return cpu;
}

/** The in-process relay child of `script` (this file, or another build's copy of it), optionally under --cpu-prof. */
function spawnRelayChild(script: string, profDir: string | undefined): ChildProcess {
  return spawn(process.execPath, [...(profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir] : []), '--expose-gc', script, '--child-relay'], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
}

function relayChildInfo(child: ChildProcess): Promise<{ udpPort: number; key: string }> {
  return new Promise((resolve, reject) => {
    child.stdout!.once('data', (d) => { try { resolve(JSON.parse(String(d))); } catch (e) { reject(e); } });
    child.once('exit', (c) => reject(new Error(`relay child exited ${c}`)));
  });
}

/** --compare: the other build's relay against the floor, and this relay against it (medians, and repeat by repeat: the same minute). */
function compareResult(build: string, that: Round[], self: Round[], floor: Round[]) {
  const m = (rs: Round[], f: (r: Round) => number): number => median(rs.map(f));
  return {
    build, forwardedPps: Math.round(m(that, (r) => r.pps)), cpuUsPerPacket: round2(m(that, (r) => r.cpuUsPerPacket)),
    ratioToBareForwarder: +(m(that, (r) => r.pps) / m(floor, (r) => r.pps)).toFixed(3),
    thisOverThatPps: +(m(self, (r) => r.pps) / m(that, (r) => r.pps)).toFixed(3),
    thatCpuOverThisCpu: +(m(that, (r) => r.cpuUsPerPacket) / m(self, (r) => r.cpuUsPerPacket)).toFixed(3),
    perRepeatThisOverThat: self.map((r, i) => +(r.pps / that[i]!.pps).toFixed(2)),
  };
}

const HELP = `Usage: node dist/bench/relay-forward.js [options]
  --pairs N           sender → receiver pairs (default 8)
  --seconds S         length of one phase (default 5)
  --repeat N          phases of each target, alternated, order rotated (default 3, at most 20)
  --agents N          registered agents for the RSS figure (default 10000; 0 skips it)
  --workers 1,2       also \`mpyc-relay serve --workers N\` for each N in the alternation
  --workers-only      just the workers' scaling curve
  --pin-generator CPU this process (the load) on that CPU once the relays run
  --pin-relay CPUS    the relays with --workers on those CPUs (taskset -c)
  --compare BUILD     also the relay of another build (a checkout with dist/, e.g. main's) in the same
                      alternation: A/B of the forwarding path in the same minutes
  --json FILE         write the result there too
RELAY_BENCH_PROF=DIR runs this build's relay child under --cpu-prof (profiles in DIR).
`;

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    pairs: { type: 'string', default: '8' }, seconds: { type: 'string', default: '5' }, repeat: { type: 'string', default: '3' },
    agents: { type: 'string', default: '10000' }, json: { type: 'string' }, workers: { type: 'string' }, 'child-relay': { type: 'boolean' },
    'child-raw': { type: 'boolean' }, 'workers-only': { type: 'boolean' }, 'pin-generator': { type: 'string' }, 'pin-relay': { type: 'string' },
    compare: { type: 'string' }, help: { type: 'boolean', short: 'h' },
  } });
  if (values.help) { process.stdout.write(HELP); return; }
  if (values['child-relay']) { await childRelay(); return; }
  if (values['child-raw']) { await childRaw(); return; }
  const pairs = Number(values.pairs), seconds = Number(values.seconds), agents = Number(values.agents);
  const repeat = Math.max(1, Math.min(20, Number(values.repeat)));
  const workerCounts = values.workers ? values.workers.split(',').map(Number).filter((n) => Number.isInteger(n) && n > 0 && n <= 64) : [];
  const workersSupported = workerCounts.length > 0 && relaySupportsWorkers();
  const targets: Target[] = [];
  const workerTargets = async (): Promise<Array<Target & { drops(): Promise<Record<string, number>> }>> => {
    const list = [];
    if (workersSupported) for (const n of workerCounts) { const t = await cliRelayTarget(n, pairs, values['pin-relay']); list.push(t); targets.push(t); }
    return list;
  };
  if (values['workers-only']) {
    // the scaling curve alone: `mpyc-relay serve --workers N` for each N, alternated
    try {
      if (!workersSupported) throw new Error('--workers-only needs --workers N,M and a relay whose serve takes --workers');
      const wt = await workerTargets();
      const pinned = pinGenerator(values['pin-generator']);
      const series = await alternate(wt, repeat, seconds);
      const rows = await Promise.all(workerCounts.map((n, i) => workersRow(n, series[i]!, wt[i]!)));
      const result = { when: new Date().toISOString(), node: process.version, pairs, secondsPerPhase: seconds, repeat, payloadBytes: 1200, generatorPinnedToCpu: pinned, relayPinnedToCpu: values['pin-relay'] ?? null, workers: rows };
      process.stdout.write(JSON.stringify(result, null, 2) + '\n');
      for (const w of rows) process.stdout.write(`${w.workers} worker(s): ${(w.pps / 1000).toFixed(1)}k packets/s, ${w.cpuUsPerPacket} µs CPU per packet (${Object.entries(w.cpuUsPerPacketByProcess).map(([k, v]) => `${k} ${v}`).join(', ')}; generator ${w.generatorUsPerPacket})\n`);
      if (values.json) writeFileSync(values.json, JSON.stringify(result, null, 2) + '\n');
    } finally {
      for (const t of targets) t.close();
    }
    return;
  }
  const child = spawnRelayChild(fileURLToPath(import.meta.url), process.env.RELAY_BENCH_PROF);
  // --compare BUILD: the same relay child from another build (e.g. main's) in the same alternation
  const other = values.compare === undefined ? undefined : spawnRelayChild(join(values.compare, 'dist', 'bench', 'relay-forward.js'), undefined);
  try {
    const info = await relayChildInfo(child);
    const relayKey = PeerKey.fromText(info.key, 'relay key').bytes;
    const rssIdle = rssOf(child.pid!);

    // --- forwarding: relay, floor and (if supported) the relay with N workers, alternated ---
    const relay = await relayTarget(child, info.udpPort, relayKey, pairs);
    const floor = await floorTarget(pairs);
    targets.push(relay, floor);
    const wt = await workerTargets();
    const pinned = pinGenerator(values['pin-generator']);
    const compared = other ? await relayChildInfo(other).then((o) => relayTarget(other, o.udpPort, PeerKey.fromText(o.key, 'relay key').bytes, pairs)) : undefined;
    if (compared) targets.push(compared);
    const series = await alternate([relay, floor, ...wt, ...(compared ? [compared] : [])], repeat, seconds);
    const pps = (k: number): number => median(series[k]!.map((x) => x.pps));
    const cpu = (k: number): number => round2(median(series[k]!.map((x) => x.cpuUsPerPacket)));
    const [relayPps, floorPps] = [pps(0), pps(1)];
    const rssForward = rssOf(child.pid!);
    const endStats = await stats(child);
    const workers: WorkersRow[] | string | undefined = !values.workers ? undefined
      : !workersSupported ? 'not supported by this relay (mpyc-relay serve has no --workers)'
        : await Promise.all(workerCounts.map((n, i) => workersRow(n, series[2 + i]!, wt[i]!)));

    // --- registered agents ---
    const reg = agents > 0 ? await rssWithAgents(child, info.udpPort, relayKey, agents) : null;

    const result = {
      when: new Date().toISOString(), pairs, secondsPerPhase: seconds, repeat, payloadBytes: 1200, generatorPinnedToCpu: pinned,
      forwardedPps: Math.round(relayPps), bareNodeUdpForwarderPps: Math.round(floorPps), ratioToBareForwarder: +(relayPps / floorPps).toFixed(3),
      cpuUsPerPacket: { relay: cpu(0), floor: cpu(1) }, floorCpuOverRelayCpu: +(cpu(1) / cpu(0)).toFixed(3),
      // the cores each forwarder was given (packets/s × CPU per packet) and what the load generator spent per
      // forwarded packet: packets/s differ more than CPU per packet when one phase was given less CPU
      coresUsed: { relay: round2((pps(0) * cpu(0)) / 1e6), floor: round2((pps(1) * cpu(1)) / 1e6) },
      generatorUsPerPacket: { relay: round2(median(series[0]!.map((x) => x.generatorUsPerPacket))), floor: round2(median(series[1]!.map((x) => x.generatorUsPerPacket))) },
      perRepeat: { relay: series[0]!.map((x) => Math.round(x.pps)), floor: series[1]!.map((x) => Math.round(x.pps)) }, workers,
      forwardedGbitPerS: +((relayPps * (1200 + SEND_HEADER_SIZE) * 8) / 1e9).toFixed(2), relayDrops: endStats.drops,
      rssIdleMB: +(rssIdle / 2 ** 20).toFixed(1), rssAfterForwardMB: +(rssForward / 2 ** 20).toFixed(1),
      ...(reg ? { registeredAgents: reg.registered, registrationTimeouts: reg.failures, registrationsPerS: Math.round(reg.perS), rssWithAgentsMB: +(reg.rss / 2 ** 20).toFixed(1), rssRightAfterRegistrationsMB: +(reg.rssBurst / 2 ** 20).toFixed(1),
        heapUsedWithAgentsMB: +(reg.heapUsed / 2 ** 20).toFixed(1), externalWithAgentsMB: +(reg.external / 2 ** 20).toFixed(1) } : {}),
      ...(compared ? { compare: compareResult(values.compare!, series.at(-1)!, series[0]!, series[1]!) } : {}),
      targets: { ratioToBareForwarder: 0.8, rssMB: 100 },
    };
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    process.stdout.write(`relay ${(relayPps / 1000).toFixed(1)}k packets/s (${cpu(0)} µs CPU per packet) vs bare Node forwarder ${(floorPps / 1000).toFixed(1)}k (${cpu(1)} µs): ${(relayPps / floorPps).toFixed(2)}× the packets/s, ${(cpu(1) / cpu(0)).toFixed(2)}× the capacity per core (target ≥ 0.8×)\n`);
    if (result.compare) {
      const c = result.compare;
      process.stdout.write(`relay of ${c.build}: ${(c.forwardedPps / 1000).toFixed(1)}k packets/s (${c.cpuUsPerPacket} µs): ${c.ratioToBareForwarder.toFixed(2)}× the forwarder; this relay / that one: ${c.thisOverThatPps.toFixed(2)}× the packets/s, ${c.thatCpuOverThisCpu.toFixed(2)}× the capacity per core (per repeat: ${c.perRepeatThisOverThat.join(', ')})\n`);
    }
    if (values.json) writeFileSync(values.json, JSON.stringify(result, null, 2) + '\n');
  } finally {
    for (const t of targets) t.close();
    other?.kill('SIGKILL');
    if (process.env.RELAY_BENCH_PROF) { child.disconnect(); await new Promise((r) => child.once('exit', r)); } else child.kill('SIGKILL');
  }
}

main().catch((err: unknown) => { process.stderr.write(`relay-forward bench: ${String(err)}\n`); process.exit(1); });
