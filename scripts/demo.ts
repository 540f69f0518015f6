// The local demo (`npm run demo`): the whole product on one machine, as real processes.
//   1. mpyc-relay (STUN + relay) on loopback;
//   2. one party opens a lobby on the relay: `mpyc-agent invite create` prints an invite;
//   3. every party runs `mpyc-agent join INVITE --create-key --up`: it creates its key, joins
//      the lobby, writes the session file all parties agreed on, prints the roster's
//      fingerprint (the same on every screen) and starts its agent (each with its own
//      --local-base, since they share this machine; on real machines every party uses
//      MPyC's default ports). Nobody copies a key by hand;
//   4. three MPyC-like parties (dist/scripts/mpyc-sim.js, MPyC's exact connection pattern
//      and framing, every byte verified) talking only to their own agent on loopback;
//   5. `mpyc-agent status --json` of every agent: the path each pair ended on.
// Options: --relay-only I  (party I runs with --relay-only: its pairs stay on the relay)
//          --rounds N --bulk BYTES (the MPyC-like workload)
// Everything binds 127.0.0.1 and is torn down on exit, also on failure and Ctrl-C.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
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

interface Daemon { child: ChildProcess; ready: Record<string, unknown>; text: () => string }

/**
 * Spawns a daemon and resolves once a JSON log line with this msg appears (on stdout or
 * stderr). Other lines (a join's progress, its roster) are kept in text() and passed to
 * onText.
 */
function daemon(args: string[], readyMsg: string, name: string, echo: (rec: Record<string, unknown>) => void,
  onText: (line: string) => void = () => {}, waitText?: RegExp): Promise<Daemon> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let text = '';
  let ready: Record<string, unknown> | undefined;
  return withTimeout(new Promise((resolve, reject) => {
    // stdout and stderr are separate pipes: a line on one may arrive after the ready log
    // line on the other, so wait for both where a text line matters
    const check = (): void => { if (ready && (!waitText || waitText.test(text))) resolve({ child, ready, text: () => text }); };
    child.on('exit', (code) => reject(new Error(`${name} exited early (code ${code}):\n${text.trim()}`)));
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        let rec: Record<string, unknown>;
        try { rec = JSON.parse(line) as Record<string, unknown>; } catch {
          text += `${line}\n`;
          onText(line);
          check();
          return;
        }
        echo(rec);
        if (rec.msg === readyMsg) { ready = rec; check(); }
      });
    }
  }), 30_000, `${name} to start`);
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

    const invite = JSON.parse(await run([agentCli, 'invite', 'create', '--relay', relayAddress, '--parties', String(M), '--name', 'demo', '--json'],
      'invite create')) as { invite: string };
    say('invite', `${invite.invite.slice(0, 24)}… (relay address, lobby id and secret: the one string the parties share)`);

    const bases = await freeBases(M, M);
    const agentStart = performance.now();
    const joins: Promise<Daemon>[] = [];
    for (let i = 0; i < M; i++) {
      const partyDir = join(dir, `party${i}`);
      mkdirSync(partyDir);
      const upArgs = ['--bind', '127.0.0.1', '--local-base', String(bases[i]), '--control', join(dir, `agent${i}.sock`)];
      if (i === relayOnly) upArgs.push('--relay-only');
      // parties join one after another here, so that party i takes index i (indices follow
      // join order); on real machines they join whenever they like
      let joined!: () => void;
      const entered = new Promise<void>((r) => { joined = r; });
      joins.push(daemon([agentCli, 'join', invite.invite, '--name', `party${i}`, '--create-key', '--key', join(partyDir, 'party.key'),
        '--out', join(partyDir, 'session.json'), '--up', '--', ...upArgs], 'ready', `party ${i}`, (rec) => {
        if (rec.msg === 'path change') say(`agent ${i}`, `peer ${String(rec.peer)}: ${String(rec.from)} → ${String(rec.to)} (${String(rec.reason)})`);
      }, (line) => {
        if (/^mpyc-agent join: (already )?joined as/.test(line)) joined();
        if (/^mpyc-agent join: \d+ of \d+ (joined|confirmed)/.test(line)) say(`party ${i}`, line.replace('mpyc-agent join: ', ''));
      }, /party \d+ of \d+; run MPyC/));
      await Promise.race([entered, joins[i]]);
    }
    const daemons = await Promise.all(joins);
    const fingerprints = daemons.map((d) => /Fingerprint: (\S+)/.exec(d.text())?.[1] ?? 'none');
    for (const [i, d] of daemons.entries()) {
      const index = Number(/party (\d+) of \d+; run MPyC/.exec(d.text())?.[1]);
      if (index !== i) throw new Error(`party ${i} got index ${index} (expected join order)`);
      say(`agent ${i}`, `up${i === relayOnly ? ' (--relay-only)' : ''}: roster fingerprint ${fingerprints[i]}; MPyC party ${i} runs "python demo.py -M${M} -I ${i} -B ${bases[i]}"`);
    }
    if (new Set(fingerprints).size !== 1) throw new Error(`the parties' fingerprints differ: ${fingerprints.join(', ')}`);
    say('session', `every party wrote the same session file (fingerprint ${fingerprints[0]}: read it aloud to each other)`);

    const rounds = values.rounds ?? '50';
    const bulk = values.bulk ?? String(1 << 20);
    say('mpyc', `3 MPyC-like parties: ${rounds} rounds of small messages + ${bulk} bytes bulk per pair, every byte verified`);
    const results = await Promise.all(bases.map((_, i) => run([mpycSim, '-M', String(M), '-I', String(i), '-B', String(bases[i]),
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
