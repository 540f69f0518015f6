#!/usr/bin/env node
// mpyc-sim: an MPyC-like party (src/tools/mpyc-sim.ts) with MPyC's own flags, so test
// scripts and the README demo can stand in for `python demo.py -M3 -I 1`.
import { parseArgs } from 'node:util';
import { runParty, type PartyStats } from '../src/tools/mpyc-sim.js';
import { MPYC_DEFAULT_BASE } from '../src/tools/mpyc-wire.js';

const HELP = `mpyc-sim — an MPyC-like party that checks every byte it receives

Usage:
  node dist/scripts/mpyc-sim.js -M m -I i [options]   one party, as 'python demo.py -M m -I i'
  node dist/scripts/mpyc-sim.js -M m [options]        all m parties in this process

Options (MPyC's names where MPyC has one):
  -M m               number of parties
  -I, --index i      this party's index, 0 <= i < m
  -B, --base-port b  party k listens on b+k (default ${MPYC_DEFAULT_BASE})
  -T, --threshold t  threshold, decides the PRSS keys in the greeting (default (m-1)//2)
  --no-prss          no PRSS keys in the greeting (MPyC --no-prss)
  --host H           host of the other parties (default localhost, as MPyC)
  --listen-host H    address this party listens on (default 127.0.0.1)
  --rounds N         rounds of small messages (default 10)
  --msg-size BYTES   payload of a round message (default 32)
  --bulk BYTES       one bulk message per ordered pair, 0 for none (default 1048576)
  --seed S           payload seed, the same for all parties (default 1)
  --timeout SEC      give up after SEC seconds (default 60)
  --json             print the statistics as JSON (one object per party)
  -h, --help         this text

Exit codes: 0 every byte verified; 1 the run failed (the message says where); 2 bad usage.
`;

function int(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (!/^\d+$/.test(v)) throw new UsageError(`${name}: not a non-negative integer: ${JSON.stringify(v)}`);
  return Number(v);
}

class UsageError extends Error {}

function summary(s: PartyStats): string {
  const lat = [...s.roundLatenciesMs].sort((a, b) => a - b);
  const p50 = lat.length ? lat[Math.floor(lat.length / 2)]!.toFixed(2) : '-';
  const max = lat.length ? lat[lat.length - 1]!.toFixed(2) : '-';
  return `party ${s.pid}/${s.m}: verified ${s.messagesVerified} messages; connected ${s.connectedMs.toFixed(1)} ms, ` +
    `first byte ${s.firstByteMs?.toFixed(1) ?? '-'} ms, round p50 ${p50} ms max ${max} ms, bulk ${s.bulkMs.toFixed(1)} ms, ` +
    `total ${s.totalMs.toFixed(1)} ms, sent ${s.bytesSent} B, received ${s.bytesReceived} B\n`;
}

async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, strict: true, allowPositionals: false, options: {
      M: { type: 'string', short: 'M' }, index: { type: 'string', short: 'I' }, 'base-port': { type: 'string', short: 'B' },
      threshold: { type: 'string', short: 'T' }, 'no-prss': { type: 'boolean' }, host: { type: 'string' },
      'listen-host': { type: 'string' }, rounds: { type: 'string' }, 'msg-size': { type: 'string' }, bulk: { type: 'string' },
      seed: { type: 'string' }, timeout: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    } }));
  } catch (err) {
    process.stderr.write(`mpyc-sim: ${(err as Error).message}\n(see --help)\n`);
    return 2;
  }
  if (values.help) { process.stdout.write(HELP); return 0; }
  let common;
  let m: number;
  let pids: number[];
  try {
    m = int('-M', values.M, 0);
    if (m < 1) throw new UsageError('-M m is required (m >= 1)');
    const index = values.index === undefined ? undefined : int('-I', values.index, 0);
    if (index !== undefined && index >= m) throw new UsageError(`-I ${index}: must be below -M ${m}`);
    pids = index === undefined ? Array.from({ length: m }, (_, k) => k) : [index];
    common = {
      m, basePort: int('-B', values['base-port'], MPYC_DEFAULT_BASE),
      ...(values.threshold !== undefined ? { threshold: int('-T', values.threshold, 0) } : {}),
      prss: !values['no-prss'], host: values.host ?? 'localhost', listenHost: values['listen-host'] ?? '127.0.0.1',
      rounds: int('--rounds', values.rounds, 10), msgSize: int('--msg-size', values['msg-size'], 32),
      bulkBytes: int('--bulk', values.bulk, 1 << 20), seed: values.seed ?? '1',
      timeoutMs: int('--timeout', values.timeout, 60) * 1000,
    };
    if (common.basePort + m - 1 > 65535) throw new UsageError(`-B ${common.basePort}: base + m - 1 exceeds 65535`);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`mpyc-sim: ${err.message}\n(see --help)\n`);
    return 2;
  }
  const results = await Promise.allSettled(pids.map((pid) => runParty({ ...common, pid })));
  let ok = true;
  const stats: PartyStats[] = [];
  for (const r of results) {
    if (r.status === 'fulfilled') stats.push(r.value);
    else { ok = false; process.stderr.write(`mpyc-sim: FAILED: ${(r.reason as Error).message}\n`); }
  }
  if (values.json) process.stdout.write(JSON.stringify(pids.length === 1 && stats.length === 1 ? stats[0] : stats) + '\n');
  else for (const s of stats) process.stdout.write(summary(s));
  return ok ? 0 : 1;
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (err) => {
  process.stderr.write(`mpyc-sim: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
