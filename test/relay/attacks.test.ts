// Adversarial tests: each relay-side attack of issue 12 against a real relay process (the
// built CLI), while a legitimate pair exchanges ping-pong traffic through it with the relay
// client, and the attacker runs in its own process (test/relay/attacker.ts). Asserted: the
// attacked resource stays bounded and the legitimate round trip stays within a stated
// factor of its own baseline. Each case prints one JSON line of measurements (RSS, CPU
// seconds, RTT p50/p99 before and during, registrations that succeeded).
//
// RELAY_ATTACK_DIST=<dir> runs the same cases against another build's dist/ (e.g. the code
// before this change, to record its numbers; its assertions then fail where it is weak).
import { describe, it, expect, beforeAll, afterEach } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as dgram from 'node:dgram';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AttackSpec } from './attacker.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const DIST = resolve(process.env.RELAY_ATTACK_DIST ?? join(HERE, '../../dist'));
const OWN_DIST = resolve(join(HERE, '../../dist'));
const RELAY_CLI = join(DIST, 'src/relay/cli.js');
const ATTACKER = join(OWN_DIST, 'test/relay/attacker.js');
const ATTACK_SECONDS = 2.5;

interface ClientLike {
  state: string;
  start(): void;
  close(): void;
  send(k: string, p: Uint8Array): boolean;
  handleDatagram(b: Uint8Array): void;
  on(e: 'packet', f: (k: string, p: Uint8Array) => void): void;
  on(e: 'state', f: (s: string) => void): void;
  setAcceptFrom?: (keys: string[]) => void;
}
type ClientCtor = new (o: Record<string, unknown>) => ClientLike;
let RelayClient: ClientCtor;
let generateKeyPair: () => { publicKey: Uint8Array; privateKey: Uint8Array };

const dir = mkdtempSync(join(tmpdir(), 'mpyc-relay-attacks-'));
const procs: ChildProcess[] = [];
const closers: Array<() => void> = [];
afterEach(() => {
  for (const c of closers.splice(0)) c();
  for (const p of procs.splice(0)) p.kill('SIGKILL');
});

beforeAll(async () => {
  expect(existsSync(RELAY_CLI), `${RELAY_CLI} missing: npm test builds first (npx tsc -p .)`).toBe(true);
  expect(existsSync(ATTACKER), `${ATTACKER} missing: npx tsc -p .`).toBe(true);
  RelayClient = (await import(join(DIST, 'src/relay/client.js'))).RelayClient as ClientCtor;
  generateKeyPair = (await import(join(DIST, 'src/noise/index.js'))).generateKeyPair;
  return () => rmSync(dir, { recursive: true, force: true });
});

const b64 = (k: Uint8Array): string => Buffer.from(k).toString('base64');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function lines(p: ChildProcess, onLine: (j: Record<string, unknown>) => void, stream: 'stdout' | 'stderr' = 'stdout'): void {
  let buf = '';
  p[stream]!.on('data', (d) => {
    buf += String(d);
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i); buf = buf.slice(i + 1);
      try { onLine(JSON.parse(line) as Record<string, unknown>); } catch { /* not JSON */ }
    }
  });
}

let relayCount = 0;
interface RelayProc { p: ChildProcess; udpPort: number; httpPort: number; key: string }

let helpText: string | undefined;
/** Flags this build's CLI does not know are left out (a baseline run of older code). */
function knownFlags(extra: string[]): string[] {
  helpText ??= spawnSync(process.execPath, [RELAY_CLI, '--help'], { encoding: 'utf8' }).stdout;
  const out: string[] = [];
  for (let i = 0; i < extra.length; i += 2) if (helpText.includes(`${extra[i]} `)) out.push(extra[i]!, extra[i + 1]!);
  return out;
}

async function startRelay(extra: string[] = []): Promise<RelayProc> {
  extra = knownFlags(extra);
  const keyFile = join(dir, `relay-${++relayCount}.key`);
  const kg = spawn(process.execPath, [RELAY_CLI, 'keygen', '--out', keyFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  let key = '';
  kg.stdout!.on('data', (d) => { key += String(d); });
  await new Promise((r) => kg.once('exit', r));
  const p = spawn(process.execPath, [RELAY_CLI, 'serve', '--key', keyFile, '--udp', '127.0.0.1:0', '--http', '127.0.0.1:0', '--log-level', 'info', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  procs.push(p);
  return new Promise((res, rej) => {
    const t = setTimeout(() => rej(new Error('relay did not start')), 10_000);
    // the relay logs on stderr (older builds: stdout)
    for (const stream of ['stdout', 'stderr'] as const) {
      lines(p, (j) => {
        if (j.msg === 'listening') { clearTimeout(t); res({ p, udpPort: j.udpPort as number, httpPort: j.httpPort as number, key: key.trim() }); }
      }, stream);
    }
    p.once('exit', (c) => { clearTimeout(t); rej(new Error(`relay exited ${c}`)); });
  });
}

/** RSS (MB), CPU seconds (user + system) and open descriptors of a process. */
function procStats(pid: number): { rssMB: number; cpuS: number; fds: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rss = Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpu = (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  return { rssMB: +rss.toFixed(1), cpuS: +cpu.toFixed(2), fds: readdirSync(`/proc/${pid}/fd`).length };
}

async function metric(r: RelayProc, name: string, label = ''): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${r.httpPort}/metrics`)).text();
  const re = new RegExp(`^${name}${label ? `\\{${label}\\}` : ''} (\\d+)`, 'm');
  return Number(re.exec(text)?.[1] ?? 0);
}

interface Agent { c: ClientLike; key: string; port: number; sock: dgram.Socket }

async function agent(r: RelayProc, host = '127.0.0.1'): Promise<Agent> {
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((res) => sock.bind(0, host, () => res()));
  const kp = generateKeyPair();
  const c = new RelayClient({ relayKey: r.key, keyPair: kp, transport: 'udp', sendUdp: (b: Uint8Array) => sock.send(b, r.udpPort, '127.0.0.1') });
  // the agent's demultiplexer: every relay frame to this socket is handed to the client, so
  // a datagram from an attacker stands for one spoofed from the relay's address
  sock.on('message', (m) => { if (m.length > 0 && m[0]! >= 0x20 && m[0]! <= 0x3f) c.handleDatagram(m); });
  closers.push(() => { c.close(); try { sock.close(); } catch { /* closed */ } });
  return { c, key: b64(kp.publicKey), port: sock.address().port, sock };
}

async function registered(a: Agent, ms = 5000): Promise<number> {
  const t0 = performance.now();
  a.c.start();
  while (a.c.state !== 'registered') {
    if (performance.now() - t0 > ms) throw new Error('registration timed out');
    await sleep(5);
  }
  return performance.now() - t0;
}

/** Ping-pong A -> B -> A every 5 ms; RTT samples per phase. */
function pingPong(a: Agent, b: Agent): { phase(name: string): void; stop(): Record<string, { p50: number; p99: number; n: number; lost: number }> } {
  b.c.on('packet', (k, p) => { if (k === a.key) b.c.send(a.key, new Uint8Array(p)); });
  const samples = new Map<string, number[]>();
  const sentIn = new Map<string, number>();
  let phase = 'warmup', seq = 0;
  a.c.on('packet', (k, p) => {
    if (k !== b.key || p.length !== 16) return;
    const dv = new DataView(p.buffer, p.byteOffset, 16);
    const ph = [...samples.keys()][dv.getUint32(0)];
    if (ph) samples.get(ph)!.push(performance.now() - dv.getFloat64(8));
  });
  const setPhase = (n: string): void => { phase = n; if (!samples.has(n)) { samples.set(n, []); sentIn.set(n, 0); } };
  setPhase('warmup');
  const timer = setInterval(() => {
    const p = new Uint8Array(16);
    const dv = new DataView(p.buffer);
    dv.setUint32(0, [...samples.keys()].indexOf(phase));
    dv.setFloat64(8, performance.now());
    if (a.c.send(b.key, p)) sentIn.set(phase, sentIn.get(phase)! + 1);
    seq++;
  }, 5);
  return {
    phase: setPhase,
    stop() {
      clearInterval(timer);
      const out: Record<string, { p50: number; p99: number; n: number; lost: number }> = {};
      for (const [n, s] of samples) {
        const v = [...s].sort((x, y) => x - y);
        const q = (f: number): number => +(v[Math.min(v.length - 1, Math.floor(f * v.length))] ?? NaN).toFixed(2);
        out[n] = { p50: q(0.5), p99: q(0.99), n: v.length, lost: (sentIn.get(n) ?? 0) - v.length };
      }
      void seq;
      return out;
    },
  };
}

function attacker(spec: AttackSpec): { ready: Promise<void>; done: Promise<Record<string, number>> } {
  const p = spawn(process.execPath, [ATTACKER, JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'inherit'] });
  procs.push(p);
  let readyRes!: () => void, doneRes!: (r: Record<string, number>) => void;
  const ready = new Promise<void>((r) => { readyRes = r; });
  const done = new Promise<Record<string, number>>((r, rej) => { doneRes = r; p.once('exit', (c) => { if (c !== 0) rej(new Error(`attacker exited ${c}`)); }); });
  lines(p, (j) => { if (j.ready) readyRes(); if (j.done) doneRes(j as Record<string, number>); });
  return { ready, done };
}

/** Baseline phase, then the attack phase with `during` running alongside; measurements. */
async function scenario(r: RelayProc, a: Agent, b: Agent, spec: Omit<AttackSpec, 'relayUdpPort' | 'relayHttpPort' | 'relayKey' | 'seconds'>,
  during?: () => Promise<Record<string, unknown>>): Promise<Record<string, unknown>> {
  const pp = pingPong(a, b);
  await sleep(300);
  pp.phase('baseline');
  const s0 = procStats(r.p.pid!);
  await sleep(1500);
  const s1 = procStats(r.p.pid!);
  const atk = attacker({ ...spec, relayUdpPort: r.udpPort, relayHttpPort: r.httpPort, relayKey: r.key, seconds: ATTACK_SECONDS });
  await atk.ready;
  pp.phase('attack');
  const s2 = procStats(r.p.pid!);
  const extra = during ? await during() : {};
  const result = await atk.done;
  const s3 = procStats(r.p.pid!);
  const rtt = pp.stop();
  const m = {
    attack: spec.attack, dist: DIST === OWN_DIST ? 'this build' : DIST,
    relayRssMB: { baseline: s1.rssMB, attackEnd: s3.rssMB },
    relayCpuS: { baseline: +(s1.cpuS - s0.cpuS).toFixed(2), attack: +(s3.cpuS - s2.cpuS).toFixed(2) },
    relayFds: { baseline: s1.fds, attackEnd: s3.fds },
    rttMs: rtt, attacker: result, ...extra,
  };
  process.stdout.write(`ATTACK ${JSON.stringify(m)}\n`);
  return m;
}

type Rtt = { p50: number; p99: number; n: number; lost: number };
/** The legitimate pair during the attack: at least 80 % of its pings answered, and the
 *  round-trip median within 10x its own baseline plus 50 ms. The slack is for the machine:
 *  relay, attacker and test share 2 vCPUs with other engineers' tests, so a loaded moment
 *  alone moves a 0.2 ms median by tens of ms; what the attacks of version 1 did is larger
 *  (agent unregistered: no pings answered; 40k stranger packets at the victim). */
function expectLegitimateTraffic(m: Record<string, unknown>): void {
  const rtt = m.rttMs as Record<string, Rtt>;
  expect(rtt.attack!.n + rtt.attack!.lost).toBeGreaterThan(100);
  expect(rtt.attack!.n).toBeGreaterThan(0.8 * (rtt.attack!.n + rtt.attack!.lost));
  expect(rtt.attack!.p50).toBeLessThan(10 * rtt.baseline!.p50 + 50);
}

describe('attacks against a real relay process, a legitimate pair talking through it', () => {
  it('attack 4: spoofed relay control frames (RESTARTING, REJECTED, forged authenticated) never unregister the agent', async () => {
    const r = await startRelay();
    const a = await agent(r), b = await agent(r);
    await Promise.all([registered(a), registered(b)]);
    const states: string[] = [];
    a.c.on('state', (s) => states.push(s));
    const m = await scenario(r, a, b, { attack: 'spoof-control', victimPort: a.port });
    expect(states).toEqual([]);
    expect(a.c.state).toBe('registered');
    expectLegitimateTraffic(m);
  }, 30_000);

  it('attack 5: REGISTER flood reusing cookies costs at most the handshake budget in DH; new agents keep registering', async () => {
    const r = await startRelay(['--handshake-rate', '20']);
    const a = await agent(r), b = await agent(r);
    await Promise.all([registered(a), registered(b)]);
    const m = await scenario(r, a, b, { attack: 'register-flood' }, async () => {
      const times: number[] = [];
      let failed = 0;
      const end = performance.now() + (ATTACK_SECONDS - 0.5) * 1000;
      while (performance.now() < end) {
        try { times.push(+(await registered(await agent(r, '127.0.0.3'), 3000)).toFixed(1)); } catch { failed++; }
        await sleep(150);
      }
      return { newRegistrations: { succeeded: times.length, failed, msMax: Math.max(...times) } };
    });
    const handshakes = await metric(r, 'mpyc_relay_registration_failures_total', 'reason="bad_handshake"');
    (m as Record<string, unknown>).relayDhForGarbage = handshakes;
    process.stdout.write(`ATTACK ${JSON.stringify({ attack: 'register-flood', relayDhForGarbage: handshakes, attackerRegisters: (m.attacker as Record<string, number>).registers })}\n`);
    const nr = m.newRegistrations as { succeeded: number; failed: number };
    expect(nr.failed).toBe(0);
    expect(nr.succeeded).toBeGreaterThanOrEqual(5);
    // burst 40 + 20/s over the attack: the garbage handshakes that reached a DH
    expect(handshakes).toBeLessThanOrEqual(40 + 20 * (ATTACK_SECONDS + 1));
    expectLegitimateTraffic(m);
  }, 30_000);

  it('attack 6: 50 fresh keys flooding one agent: nothing reaches it past its accept set; the pair is unaffected', async () => {
    const r = await startRelay();
    const a = await agent(r), b = await agent(r);
    await Promise.all([registered(a), registered(b)]);
    let fromStrangers = 0;
    b.c.on('packet', (k) => { if (k !== a.key) fromStrangers++; });
    b.c.setAcceptFrom?.([a.key]);
    a.c.setAcceptFrom?.([b.key]);
    await sleep(100);
    const m = await scenario(r, a, b, { attack: 'stranger-flood', victimKey: b.key });
    const forwarded = await metric(r, 'mpyc_relay_forwarded_packets_total');
    const notAccepted = await metric(r, 'mpyc_relay_dropped_total', 'reason="not_accepted"');
    process.stdout.write(`ATTACK ${JSON.stringify({ attack: 'stranger-flood', fromStrangers, forwarded, notAccepted })}\n`);
    expect((m.attacker as Record<string, number>).registered).toBe(50);
    expect(fromStrangers).toBe(0);
    expect(notAccepted).toBeGreaterThan(1000);
    expectLegitimateTraffic(m);
  }, 30_000);

  it('attack 9: STUN with unknown required attributes from 20 sources: answers never larger than the request allows, budget per source', async () => {
    const r = await startRelay(['--stun-rate', '20']);
    const a = await agent(r), b = await agent(r);
    await Promise.all([registered(a), registered(b)]);
    const m = await scenario(r, a, b, { attack: 'stun-amplify', pps: 10_000 });
    const x = m.attacker as Record<string, number>;
    process.stdout.write(`ATTACK ${JSON.stringify({ attack: 'stun-amplify', amplification: +(x.bytesIn! / x.bytesOut!).toFixed(4), largest: x.largest })}\n`);
    expect(x.largest).toBeLessThanOrEqual(40); // the IPv4 Binding success size
    // 20 sources x (burst 40 + 20/s x attack time)
    expect(x.answers).toBeLessThanOrEqual(20 * (40 + 20 * (ATTACK_SECONDS + 0.5)));
    expectLegitimateTraffic(m);
  }, 30_000);

  it('attack 10: 3000 idle and dribbling HTTP connections from 30 addresses: capped per source and in total, closed by the timeouts; a WebSocket agent still registers', async () => {
    const r = await startRelay(['--max-connections-per-source', '20', '--max-connections', '1000', '--headers-timeout', '1000']);
    const a = await agent(r), b = await agent(r);
    await Promise.all([registered(a), registered(b)]);
    const m = await scenario(r, a, b, { attack: 'http-hold' }, async () => {
      await sleep(800);
      const held = procStats(r.p.pid!).fds;
      const { relayWsUrl } = await import(join(DIST, 'src/relay/client.js')) as { relayWsUrl: (h: string, p: number) => string };
      const ws = new RelayClient({ relayKey: r.key, keyPair: generateKeyPair(), transport: 'ws', wsUrl: relayWsUrl('127.0.0.1', r.httpPort) });
      closers.push(() => ws.close());
      const wsAgent = { c: ws, key: '', port: 0, sock: undefined as unknown as dgram.Socket };
      const ms = await registered(wsAgent, 5000);
      return { relayFdsDuringAttack: held, wsRegistrationMs: +ms.toFixed(1) };
    });
    const fds = m.relayFds as { baseline: number; attackEnd: number };
    // during: at most 20 per source address; at the end (> headers timeout): all closed
    expect(m.relayFdsDuringAttack as number).toBeLessThan(30 * 20 + 100);
    expect(fds.attackEnd).toBeLessThanOrEqual(fds.baseline + 5);
    expectLegitimateTraffic(m);
  }, 30_000);
});
