// Relay benchmark (issue 3 item 8):
//  1. forwarded packets/s on one core: the relay runs alone in a child process; this
//     process is the load generator (several sender->receiver pairs, 1200-byte payloads).
//     The rate is read from the relay's own counter, so it is what the relay forwarded.
//  2. relay RSS with 10k registered agents (each a distinct UDP source address; 0 skips it).
//  3. a bare Node UDP forwarder (recv → send, no relay logic) under the same load, right
//     after: the floor; the result has the ratio relay / floor (issue 16 goal 6: ≥ 0.8).
//  4. with --workers 1,2: `mpyc-relay serve --workers N` (the CLI, N worker processes
//     behind one port) under the same load, packets/s counted at the receivers; a relay
//     whose serve has no --workers yet is reported as "not supported by this relay".
// Usage: node dist/bench/relay-forward.js [--pairs 8] [--seconds 5] [--agents 10000] [--workers 1,2] [--json FILE]
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as dgram from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { PeerKey } from '../src/common/peer-key.js';
import { RelayServer } from '../src/relay/server.js';
import { HandshakeState, generateKeyPair, type KeyPair } from '../src/relay/handshake.js';
import {
  FRAME_CHALLENGE, FRAME_REGISTERED, NOISE_PROTOCOL, encodeHello, encodeRegister, encodeSend, registrationPrologue,
} from '../src/relay/wire.js';

async function childRelay(): Promise<void> {
  const server = new RelayServer({
    keyPair: generateKeyPair(), udp: { host: '127.0.0.1', port: 0 }, http: { host: '127.0.0.1', port: 0 },
    ratePps: 10_000_000, maxAgents: 200_000, expiryS: 600,
  });
  const ports = await server.start();
  process.stdout.write(JSON.stringify({ ...ports, key: server.publicKey }) + '\n');
  process.on('message', (m: unknown) => {
    // measure steady state: collect the registrations' garbage first (child runs with --expose-gc)
    if (m === 'stats') (globalThis as { gc?: () => void }).gc?.();
    if (m === 'stats') process.send!({ forwarded: server.counters.forwardedPackets, agents: server.agentCount, drops: server.counters.drops });
  });
  process.on('disconnect', () => process.exit(0));
}

/** Floor: a bare Node UDP forwarder (recv -> send to one fixed port), no relay logic. */
async function childRaw(): Promise<void> {
  const sock = dgram.createSocket({ type: 'udp4', recvBufferSize: 8 << 20, sendBufferSize: 8 << 20 });
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

async function rawFloor(seconds: number, pairs: number): Promise<number> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--child-raw'], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  try {
    const info = await new Promise<{ udpPort: number }>((resolve, reject) => {
      child.stdout!.once('data', (d) => { try { resolve(JSON.parse(String(d))); } catch (e) { reject(e); } });
    });
    const recv = await bindSocket();
    recv.on('message', () => { /* discard */ });
    child.send({ dest: recv.address().port });
    const senders = await Promise.all(Array.from({ length: pairs }, () => bindSocket()));
    const frame = new Uint8Array(1233);
    const start = await stats(child);
    const t0 = performance.now(), deadline = t0 + seconds * 1000;
    await new Promise<void>((resolve) => {
      const burst = (): void => {
        if (performance.now() >= deadline) { resolve(); return; }
        for (let k = 0; k < 64; k++) for (const s of senders) s.send(frame, info.udpPort, '127.0.0.1');
        setImmediate(burst);
      };
      burst();
    });
    const elapsed = (performance.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 300));
    const end = await stats(child);
    for (const s of senders) s.close();
    recv.close();
    return (end.forwarded - start.forwarded) / elapsed;
  } finally { child.kill('SIGKILL'); }
}

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

function stats(child: ChildProcess): Promise<{ forwarded: number; agents: number; drops: Record<string, number> }> {
  return new Promise((resolve) => { child.once('message', (m) => resolve(m as never)); child.send('stats'); });
}

async function bindSocket(big = true): Promise<dgram.Socket> {
  const s = dgram.createSocket(big ? { type: 'udp4', sendBufferSize: 4 << 20, recvBufferSize: 4 << 20 } : { type: 'udp4' });
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  return s;
}

/** Register `kp` from socket `s` (HELLO retried every 2 s, 10 tries); resolves when REGISTERED verifies. */
function register(s: dgram.Socket, port: number, relayKey: Uint8Array, kp: KeyPair): Promise<void> {
  return new Promise((resolve, reject) => {
    let hs: HandshakeState | undefined;
    let tries = 0;
    const hello = (): void => {
      if (++tries > 10) { s.off('message', onMsg); reject(new Error('registration timed out')); return; }
      hs = undefined;
      s.send(encodeHello(), port, '127.0.0.1');
      timer = setTimeout(hello, 2000);
    };
    let timer: NodeJS.Timeout;
    const onMsg = (m: Buffer): void => {
      if (m[0] === FRAME_CHALLENGE && !hs) {
        const cookie = m.subarray(4, 28);
        hs = new HandshakeState({ protocolName: NOISE_PROTOCOL, initiator: true, prologue: registrationPrologue(cookie), staticKey: kp, remoteStaticKey: relayKey });
        s.send(encodeRegister(cookie, hs.writeMessage(new Uint8Array(0))), port, '127.0.0.1');
      } else if (m[0] === FRAME_REGISTERED && hs) {
        hs.readMessage(m.subarray(4));
        clearTimeout(timer);
        s.off('message', onMsg);
        resolve();
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

/** `mpyc-relay serve --workers N` on loopback under the standard load; packets/s delivered to the receivers. */
async function cliRelayPps(workers: number, seconds: number, pairs: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'relay-workers-'));
  let child: ChildProcess | null = null;
  try {
    const keyFile = join(dir, 'relay.key');
    const kg = spawnSync(process.execPath, [RELAY_CLI, 'keygen', '--out', keyFile], { encoding: 'utf8', timeout: 20_000 });
    if (kg.status !== 0) throw new Error(`relay keygen failed: ${kg.stderr}`);
    child = spawn(process.execPath, [RELAY_CLI, 'serve', '--key', keyFile, '--workers', String(workers), '--udp', '127.0.0.1:0', '--http', 'off',
      '--rate', '10000000', '--log-level', 'info'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const listening = await new Promise<{ relayAddress: string }>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('relay with workers: no "listening" line within 20 s')), 20_000);
      const onLine = (d: Buffer): void => {
        for (const line of String(d).split('\n')) {
          try { const r = JSON.parse(line) as { msg?: string; relayAddress?: string }; if (r.msg === 'listening' && r.relayAddress) { clearTimeout(t); resolve(r as { relayAddress: string }); } } catch { /* not JSON */ }
        }
      };
      child!.stdout!.on('data', onLine);
      child!.stderr!.on('data', onLine);
      child!.once('exit', (c) => { clearTimeout(t); reject(new Error(`relay with workers exited ${c}`)); });
    });
    // KEY@host:udpPort/httpPort
    const m = /^([^@]+)@[^:]+:(\d+)/.exec(listening.relayAddress);
    if (!m) throw new Error(`unexpected relay address ${listening.relayAddress}`);
    const { delivered, elapsed } = await loadRelay(Number(m[2]), PeerKey.fromText(m[1]!).bytes, pairs, seconds);
    return delivered / elapsed;
  } finally {
    child?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Registers `pairs` sender→receiver pairs with the relay and sends 1200-byte frames for `seconds`. */
async function loadRelay(udpPort: number, relayKey: Uint8Array, pairs: number, seconds: number): Promise<{ sent: number; delivered: number; elapsed: number }> {
  const senders: Array<{ s: dgram.Socket; frame: Uint8Array }> = [];
  const receivers: dgram.Socket[] = [];
  for (let i = 0; i < pairs; i++) {
    const a = await bindSocket(), b = await bindSocket();
    const ka = generateKeyPair(), kb = generateKeyPair();
    await register(a, udpPort, relayKey, ka);
    await register(b, udpPort, relayKey, kb);
    senders.push({ s: a, frame: encodeSend(kb.publicKey, new Uint8Array(1200).fill(i)) });
    receivers.push(b);
  }
  let delivered = 0;
  for (const r of receivers) r.on('message', () => { delivered++; });
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  let sent = 0;
  await new Promise<void>((resolve) => {
    const burst = (): void => {
      if (performance.now() >= deadline) { resolve(); return; }
      // bounded bursts, then yield to the event loop so sends drain
      for (let k = 0; k < 64; k++) for (const x of senders) { x.s.send(x.frame, udpPort, '127.0.0.1'); sent++; }
      setImmediate(burst);
    };
    burst();
  });
  const elapsed = (performance.now() - t0) / 1000;
  await new Promise((r) => setTimeout(r, 300));
  for (const x of senders) x.s.close();
  for (const r of receivers) r.close();
  return { sent, delivered, elapsed };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    pairs: { type: 'string', default: '8' }, seconds: { type: 'string', default: '5' },
    agents: { type: 'string', default: '10000' }, json: { type: 'string' }, workers: { type: 'string' }, 'child-relay': { type: 'boolean' },
    'child-raw': { type: 'boolean' },
  } });
  if (values['child-relay']) { await childRelay(); return; }
  if (values['child-raw']) { await childRaw(); return; }
  const pairs = Number(values.pairs), seconds = Number(values.seconds), agents = Number(values.agents);
  const child = spawn(process.execPath, [...(process.env.RELAY_BENCH_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.RELAY_BENCH_PROF] : []), '--expose-gc', fileURLToPath(import.meta.url), '--child-relay'], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  try {
    const info = await new Promise<{ udpPort: number; key: string }>((resolve, reject) => {
      child.stdout!.once('data', (d) => { try { resolve(JSON.parse(String(d))); } catch (e) { reject(e); } });
      child.once('exit', (c) => reject(new Error(`relay child exited ${c}`)));
    });
    const relayKey = PeerKey.fromText(info.key, 'relay key').bytes;
    const rssIdle = rssOf(child.pid!);

    // --- forwarding ---
    const start = await stats(child);
    const load = await loadRelay(info.udpPort, relayKey, pairs, seconds);
    const end = await stats(child);
    const elapsed = load.elapsed, sent = load.sent, received = load.delivered;
    const pps = (end.forwarded - start.forwarded) / elapsed;
    const rssForward = rssOf(child.pid!);

    // --- 10k registered agents ---
    const socks: dgram.Socket[] = [];
    let regFailures = 0;
    const t1 = performance.now();
    try {
      for (let i = 0; i < agents; i += 50) {
        await Promise.all(Array.from({ length: Math.min(50, agents - i) }, async () => {
          const s = await bindSocket(false);
          socks.push(s);
          try { await register(s, info.udpPort, relayKey, generateKeyPair()); } catch { regFailures++; }
        }));
        if (regFailures > agents / 10) throw new Error(`too many registration failures (${regFailures})`);
      }
    } finally { /* keep sockets open while we measure */ }
    const regSeconds = (performance.now() - t1) / 1000;
    const after = await stats(child);
    const rssAgents = rssOf(child.pid!);
    for (const s of socks) s.close();

    const floor = await rawFloor(seconds, pairs);
    let workers: Array<{ workers: number; pps: number }> | string | undefined;
    if (values.workers) {
      if (!relaySupportsWorkers()) workers = 'not supported by this relay (mpyc-relay serve has no --workers)';
      else {
        workers = [];
        for (const n of values.workers.split(',').map(Number)) workers.push({ workers: n, pps: Math.round(await cliRelayPps(n, seconds, pairs)) });
      }
    }
    const result = {
      bareNodeUdpForwarderPps: Math.round(floor), ratioToBareForwarder: +(pps / floor).toFixed(3), workers,
      when: new Date().toISOString(), pairs, seconds: elapsed, payloadBytes: 1200,
      offeredPps: Math.round(sent / elapsed), forwardedPps: Math.round(pps), deliveredToLoadGen: received,
      forwardedGbitPerS: +((pps * (1200 + 33) * 8) / 1e9).toFixed(2), relayDrops: end.drops,
      rssIdleMB: +(rssIdle / 2 ** 20).toFixed(1), rssAfterForwardMB: +(rssForward / 2 ** 20).toFixed(1),
      registeredAgents: after.agents, registrationTimeouts: regFailures, registrationsPerS: Math.round(agents / regSeconds), rssWithAgentsMB: +(rssAgents / 2 ** 20).toFixed(1),
      targets: { pps: 300_000, rssMB: 100 },
    };
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    process.stdout.write(`relay ${Math.round(pps / 1000)}k packets/s vs bare Node forwarder ${Math.round(floor / 1000)}k: ${(pps / floor).toFixed(2)}× (target ≥ 0.8×)\n`);
    if (values.json) writeFileSync(values.json, JSON.stringify(result, null, 2) + '\n');
  } finally {
    if (process.env.RELAY_BENCH_PROF) { child.disconnect(); await new Promise((r) => child.once('exit', r)); } else child.kill('SIGKILL');
  }
}

main().catch((err: unknown) => { process.stderr.write(`relay-forward bench: ${String(err)}\n`); process.exit(1); });
