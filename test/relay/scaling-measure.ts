// Relay forwarding rate with 1 and 2 worker processes against a bare Node UDP forwarder,
// interleaved rounds, medians (docs/relay.md, "Forwarding rate" and "Using every core").
// Not a test (vitest runs *.test.ts only): node dist/test/relay/scaling-measure.js
//   [--rounds 3] [--seconds 3] [--pairs 8] [--pps 30000]
// At the default offered rate (below saturation) every forwarder keeps up; what differs is
// the CPU each spends per packet. --pps 200000 saturates them (then the shared machine's
// scheduling decides more than the code does: see docs/relay.md).
// Everything on loopback; every process it starts is killed at the end of its round.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as dgram from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { RelayClient } from '../../src/relay/client.js';
import { generateKeyPair } from '../../src/noise/index.js';
import { SEND_HEADER_SIZE, isRelayFrame } from '../../src/relay/wire.js';

const CLI = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../src/relay/cli.js');
const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, seconds: { type: 'string', default: '3' }, pairs: { type: 'string', default: '8' }, pps: { type: 'string', default: '30000' } } });
const ROUNDS = Number(values.rounds), SECONDS = Number(values.seconds), PAIRS = Number(values.pairs), PPS = Number(values.pps);
const dir = mkdtempSync(join(tmpdir(), 'mpyc-relay-scaling-'));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function bind(): Promise<dgram.Socket> {
  const s = dgram.createSocket({ type: 'udp4', sendBufferSize: 4 << 20, recvBufferSize: 4 << 20 });
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  return s;
}

function firstJsonLine(p: ChildProcess, pred: (j: Record<string, unknown>) => boolean, stream: 'stdout' | 'stderr' = 'stdout'): Promise<Record<string, unknown>> {
  return new Promise((res, rej) => {
    let out = '';
    const t = setTimeout(() => rej(new Error(`no line: ${out}`)), 10_000);
    p[stream]!.on('data', (d) => {
      out += String(d);
      for (const l of out.split('\n')) { try { const j = JSON.parse(l); if (pred(j)) { clearTimeout(t); res(j); return; } } catch { /* partial */ } }
    });
  });
}

/** Offer frames from `senders` for SECONDS at up to PPS; returns the seconds it ran. */
async function offer(senders: Array<{ s: dgram.Socket; frame: Uint8Array }>, port: number): Promise<number> {
  const t0 = performance.now(), end = t0 + SECONDS * 1000;
  let sent = 0;
  while (performance.now() < end) {
    for (let k = 0; k < 16; k++) for (const x of senders) x.s.send(x.frame, port, '127.0.0.1');
    sent += 16 * senders.length;
    const ahead = (sent / PPS) * 1000 - (performance.now() - t0);
    if (ahead > 1) await sleep(ahead); else await new Promise((r) => setImmediate(r));
  }
  return (performance.now() - t0) / 1000;
}

/** Bare forwarder: recv -> send to one fixed port, counts; no relay logic. */
const FLOOR = `
const d = require('node:dgram');
const s = d.createSocket({ type: 'udp4', recvBufferSize: 8 << 20, sendBufferSize: 8 << 20 });
let dest = 0, n = 0;
s.on('message', (m) => { if (dest) { s.send(m, dest, '127.0.0.1'); n++; } });
s.bind(0, '127.0.0.1', () => console.log(JSON.stringify({ port: s.address().port })));
process.stdin.on('data', (b) => { const t = String(b).trim(); if (t === 'count') console.log(JSON.stringify({ n })); else dest = Number(t); });
`;

async function floorRound(): Promise<number> {
  const p = spawn(process.execPath, ['-e', FLOOR], { stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    const { port } = await firstJsonLine(p, (j) => 'port' in j) as { port: number };
    const recv = await bind();
    recv.on('message', () => { /* discard */ });
    p.stdin!.write(`${recv.address().port}\n`);
    const senders = await Promise.all(Array.from({ length: PAIRS }, async () => ({ s: await bind(), frame: new Uint8Array(SEND_HEADER_SIZE + 1200) })));
    await sleep(100);
    const count = (): Promise<number> => { const r = firstJsonLine(p, (j) => 'n' in j); p.stdin!.write('count\n'); return r.then((j) => j.n as number); };
    const c0 = await count();
    const d0 = udpDrops([port, recv.address().port]);
    const cpu0 = cpuOfTree(p.pid!);
    const secs = await offer(senders, port);
    await sleep(300);
    const cpu = cpuOfTree(p.pid!) - cpu0;
    drops.floor!.push(udpDrops([port, recv.address().port]) - d0);
    const c1 = await count();
    for (const x of senders) x.s.close();
    recv.close();
    usPerPacket.floor!.push(+((cpu * 1e6) / (c1 - c0)).toFixed(1));
    return (c1 - c0) / secs;
  } finally { p.kill('SIGKILL'); }
}

async function relayRound(workers: number): Promise<number> {
  const keyFile = join(dir, `k${workers}-${Date.now()}`);
  const relayKey = spawnSync(process.execPath, [CLI, 'keygen', '--out', keyFile], { encoding: 'utf8' }).stdout.trim();
  // RELAY_PROF=DIR: CPU profiles of the relay processes (node --cpu-prof)
  const prof = process.env.RELAY_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.RELAY_PROF] : [];
  const p = spawn(process.execPath, [...prof, CLI, 'serve', '--key', keyFile, '--udp', '127.0.0.1:0', '--http', '127.0.0.1:0', '--workers', String(workers),
    '--rate', '10000000', '--source-rate', '0', '--dest-rate', '0', '--global-rate', '0', '--handshake-rate', '0', '--log-level', 'info'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const clients: RelayClient[] = [];
  let capture: ((b: Uint8Array) => void) | undefined;
  try {
    const j = await firstJsonLine(p, (x) => x.msg === 'listening', 'stderr') as { udpPort: number; httpPort: number };
    const senders: Array<{ s: dgram.Socket; frame: Uint8Array }> = [];
    const receivers: dgram.Socket[] = [];
    for (let i = 0; i < PAIRS; i++) {
      const pair = await Promise.all([0, 1].map(async () => {
        const s = await bind();
        const kp = generateKeyPair();
        // capture: takes the frame the client builds instead of sending it (the load's frames)
        const c = new RelayClient({ relayKey, keyPair: kp, transport: 'udp', sendUdp: (b) => { if (capture) capture(b); else s.send(b, j.udpPort, '127.0.0.1'); } });
        s.on('message', (m) => { if (isRelayFrame(m)) c.handleDatagram(m); });
        clients.push(c);
        c.start();
        while (c.state !== 'registered') await sleep(5);
        return { s, kp, c };
      }));
      // the sender's own SEND frame (with its registration token), built by its client once
      let frame: Uint8Array | undefined;
      capture = (b) => { frame = new Uint8Array(b); };
      pair[0]!.c.send(pair[1]!.kp.publicKey, new Uint8Array(1200));
      capture = undefined;
      senders.push({ s: pair[0]!.s, frame: frame! });
      // from now on the receiver discards what arrives, as the floor's receiver does: the
      // load generator's own per-packet work must be the same in both measurements
      receivers.push(pair[1]!.s);
      pair[1]!.s.removeAllListeners('message');
      pair[1]!.s.on('message', () => { /* discard */ });
    }
    await sleep(1200);
    const metric = async (): Promise<number> => Number(/^mpyc_relay_forwarded_packets_total (\d+)/m.exec(await (await fetch(`http://127.0.0.1:${j.httpPort}/metrics`)).text())?.[1] ?? 0);
    const c0 = await metric();
    const cpu0 = cpuOfTree(p.pid!);
    const watched = [j.udpPort, ...receivers.map((r) => r.address().port)];
    const d0 = udpDrops(watched);
    const secs = await offer(senders, j.udpPort);
    await sleep(300);
    const cpu = cpuOfTree(p.pid!) - cpu0;
    drops[`relay${workers}`]!.push(udpDrops(watched) - d0);
    await sleep(2500); // a worker reports every second, the primary sums every second
    const c1 = await metric();
    usPerPacket[`relay${workers}`]!.push(+((cpu * 1e6) / (c1 - c0)).toFixed(1));
    return (c1 - c0) / secs;
  } finally {
    for (const c of clients) c.close();
    // SIGTERM: the primary passes it to its workers and exits when they have
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await Promise.race([exited, sleep(3000)]);
    p.kill('SIGKILL');
  }
}

/** Kernel receive-queue drops of the UDP sockets bound to `ports` (/proc/net/udp). */
function udpDrops(ports: number[]): number {
  let n = 0;
  for (const l of readFileSync('/proc/net/udp', 'utf8').trim().split('\n').slice(1)) {
    const f = l.trim().split(/\s+/);
    if (ports.includes(parseInt(f[1]!.split(':')[1]!, 16))) n += Number(f[12]);
  }
  return n;
}
const drops: Record<string, number[]> = { floor: [], relay1: [], relay2: [] };

/** CPU seconds (user + system) of a process and its children (the cluster's workers). */
function cpuOfTree(pid: number): number {
  const kids = spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).stdout.trim().split('\n').filter(Boolean).map(Number);
  return [pid, ...kids].reduce((sum, q) => {
    try {
      const st = readFileSync(`/proc/${q}/stat`, 'utf8');
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      return sum + (Number(f[11]) + Number(f[12])) / 100;
    } catch { return sum; }
  }, 0);
}
/** CPU microseconds the forwarder process(es) spent per forwarded packet, per round: what
 *  one core's capacity is (1e6 / this), independent of how much CPU the shared machine
 *  happened to give the process during the round */
const usPerPacket: Record<string, number[]> = { floor: [], relay1: [], relay2: [] };

const median = (v: number[]): number => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
const results: Record<string, number[]> = { floor: [], relay1: [], relay2: [] };
try {
  for (let r = 0; r < ROUNDS; r++) {
    results.floor!.push(await floorRound());
    results.relay1!.push(await relayRound(1));
    results.relay2!.push(await relayRound(2));
    process.stderr.write(`round ${r + 1}: ${Object.entries(results).map(([k, v]) => `${k} ${Math.round(v[r]!)}`).join(', ')}; CPU us/packet ${usPerPacket.floor![r]} / ${usPerPacket.relay1![r]} / ${usPerPacket.relay2![r]}; kernel drops ${drops.floor![r]} / ${drops.relay1![r]} / ${drops.relay2![r]}\n`);
  }
  const m = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, Math.round(median(v))]));
  const us = Object.fromEntries(Object.entries(usPerPacket).map(([k, v]) => [k, median(v)]));
  process.stdout.write(JSON.stringify({
    when: new Date().toISOString(), rounds: ROUNDS, seconds: SECONDS, pairs: PAIRS, offeredPpsCap: PPS, payloadBytes: 1200,
    medianPps: m, medianCpuUsPerPacket: us, kernelReceiveDrops: drops,
    relay1VsFloor: +(m.relay1! / m.floor!).toFixed(2), relay2VsRelay1: +(m.relay2! / m.relay1!).toFixed(2),
    // capacity per core from the CPU cost: relay per-packet cost against the floor's
    relay1CapacityVsFloor: +(us.floor! / us.relay1!).toFixed(2), all: results, usPerPacket,
  }, null, 2) + '\n');
} finally { rmSync(dir, { recursive: true, force: true }); }
