// The local demo (`npm run demo`): the whole product on one machine, as real processes.
//   1. mpyc-relay (STUN + relay) on loopback;
//   2. three parties: `mpyc-agent keygen`, one shared session file (`mpyc-agent session`);
//   3. three `mpyc-agent up` daemons (each with its own --local-base, since they share
//      this machine; on real machines every party uses MPyC's default ports);
//   4. three MPyC-like parties (dist/scripts/mpyc-sim.js, MPyC's exact connection pattern
//      and framing, every byte verified) talking only to their own agent on loopback;
//   5. `mpyc-agent status --json` of every agent: the path each pair ended on.
// Options: --relay-only I  (party I runs with --relay-only: its pairs stay on the relay)
//          --rounds N --bulk BYTES (the MPyC-like workload)
// Everything binds 127.0.0.1 and is torn down on exit, also on failure and Ctrl-C.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import type { AgentStatus } from '../src/agent/types.js';
import { freeBases } from '../src/common/ports.js';

const distRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const relayCli = join(distRoot, 'src/relay/cli.js');
const agentCli = join(distRoot, 'src/agent/cli.js');
const mpycSim = join(distRoot, 'scripts/mpyc-sim.js');
const M = 3;
const t0 = performance.now();
const say = (who: string, msg: string): void => { console.log(`${((performance.now() - t0) / 1000).toFixed(2).padStart(6)}s  ${who.padEnd(8)} ${msg}`); };

const children: ChildProcess[] = [];

function run(args: string[], what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    c.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    c.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${what} failed (exit ${code}): ${err.trim() || out.trim()}`))));
  });
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    p.then((v) => { clearTimeout(t); resolve(v); }, (e: unknown) => { clearTimeout(t); reject(e instanceof Error ? e : new Error(String(e))); });
  });
}

/** Spawns a daemon and resolves once a JSON log line with this msg appears (on stdout or stderr). */
function daemon(args: string[], readyMsg: string, name: string, echo: (rec: Record<string, unknown>) => void): Promise<{ child: ChildProcess; ready: Record<string, unknown> }> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  return withTimeout(new Promise((resolve, reject) => {
    child.on('exit', (code) => reject(new Error(`${name} exited early (code ${code})`)));
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        let rec: Record<string, unknown>;
        try { rec = JSON.parse(line) as Record<string, unknown>; } catch { return; }
        echo(rec);
        if (rec.msg === readyMsg) resolve({ child, ready: rec });
      });
    }
  }), 15_000, `${name} to start`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { 'relay-only': { type: 'string' }, rounds: { type: 'string' }, bulk: { type: 'string' } } });
  const relayOnly = values['relay-only'] !== undefined ? Number(values['relay-only']) : -1;
  const dir = mkdtempSync(join(tmpdir(), 'mpyc-demo-'));
  const cleanup = (): void => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  };
  process.on('SIGINT', () => { cleanup(); process.exit(130); });
  try {
    await run([relayCli, 'keygen', '--out', join(dir, 'relay.key')], 'relay keygen');
    const relay = await daemon([relayCli, 'serve', '--key', join(dir, 'relay.key'), '--udp', '127.0.0.1:0', '--http', '127.0.0.1:0'],
      'listening', 'relay', () => {});
    const relayAddress = String(relay.ready.relayAddress);
    say('relay', `listening; address for the session file: ${relayAddress}`);

    const sessionFile = join(dir, 'session.json');
    await run([agentCli, 'session', 'create', sessionFile, '--relay', relayAddress], 'session create');
    const keys: string[] = [];
    for (let i = 0; i < M; i++) {
      const keyFile = join(dir, `party${i}.key`);
      const pub = (await run([agentCli, 'keygen', '--out', keyFile], 'keygen')).trim();
      keys.push(pub);
      await run([agentCli, 'session', 'add', sessionFile, '--pubkey', pub, '--name', `party${i}`], 'session add');
      say(`party ${i}`, `key ${pub}`);
    }
    say('session', `${sessionFile}: relay + ${M} public keys (the only file the parties share)`);

    const bases = await freeBases(M, M);
    const agentStart = performance.now();
    for (let i = 0; i < M; i++) {
      const args = [agentCli, 'up', sessionFile, '--key', join(dir, `party${i}.key`), '--bind', '127.0.0.1',
        '--local-base', String(bases[i]), '--control', join(dir, `agent${i}.sock`)];
      if (i === relayOnly) args.push('--relay-only');
      await daemon(args, 'ready', `agent ${i}`, (rec) => {
        if (rec.msg === 'path change') say(`agent ${i}`, `peer ${String(rec.peer)}: ${String(rec.from)} → ${String(rec.to)} (${String(rec.reason)})`);
      });
      say(`agent ${i}`, `up${i === relayOnly ? ' (--relay-only)' : ''}: MPyC party ${i} runs "python demo.py -M${M} -I ${i} -B ${bases[i]}"`);
    }

    const rounds = values.rounds ?? '50';
    const bulk = values.bulk ?? String(1 << 20);
    say('mpyc', `3 MPyC-like parties: ${rounds} rounds of small messages + ${bulk} bytes bulk per pair, every byte verified`);
    const results = await Promise.all(keys.map((_, i) => run([mpycSim, '-M', String(M), '-I', String(i), '-B', String(bases[i]),
      '--rounds', rounds, '--bulk', bulk, '--json', '--timeout', '60'], `mpyc-sim party ${i}`)));
    for (const [i, out] of results.entries()) {
      const s = JSON.parse(out.trim().split('\n').at(-1)!) as { totalMs: number; firstByteMs: number; messagesVerified: number; roundLatenciesMs: number[] };
      const lat = [...s.roundLatenciesMs].sort((a, b) => a - b);
      say(`mpyc ${i}`, `done: ${s.messagesVerified} messages verified, first byte at ${s.firstByteMs.toFixed(0)} ms, round p50 ${lat[Math.floor(lat.length / 2)]?.toFixed(2)} ms, total ${s.totalMs.toFixed(0)} ms`);
    }

    // the paths each pair ended on, from the agents' own status
    console.log('\npair        path (from mpyc-agent status)');
    for (let i = 0; i < M; i++) {
      const st = JSON.parse(await run([agentCli, 'status', '--json', '--control', join(dir, `agent${i}.sock`)], 'status')) as AgentStatus;
      for (const p of st.peers) {
        if (p.index < i) continue;
        const path = p.path?.kind === 'direct' ? `direct ${p.path.address}` : p.path ? `relay (${p.path.transport})` : 'none';
        console.log(`${i} ↔ ${p.index}       ${path.padEnd(24)} rtt ${p.rttMs?.toFixed(2) ?? '-'} ms, ${p.bytesSent} B sent, ${p.bytesReceived} B received`);
      }
    }
    say('demo', `complete (agents up → end: ${((performance.now() - agentStart) / 1000).toFixed(1)} s)`);
  } finally {
    cleanup();
  }
}

main().catch((err: unknown) => {
  console.error(`demo failed: ${err instanceof Error ? err.message : String(err)}`);
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  process.exitCode = 1;
});
