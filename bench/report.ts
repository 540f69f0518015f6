// Summaries, the markdown table, and the DESIGN.md §5 verdicts.
import { median, percentile } from './lib/stats.js';
import { SYSTEMS, SYSTEM_LABEL, type RoundResult, type SystemId } from './systems.js';

export type ConditionId = 'loopback' | 'wan20' | 'wan20loss2';
export const CONDITION_LABEL: Record<ConditionId, string> = {
  loopback: 'loopback', wan20: 'WAN 20 ms RTT', wan20loss2: 'WAN 20 ms RTT + 2 % loss',
};

export interface SystemSummary {
  system: SystemId;
  rounds: number;
  errors: string[];
  /** ping-pong round time (µs): median over rounds of each round's percentile */
  pingP50Us: number;
  pingP99Us: number;
  pingP999Us: number;
  pingSamples: number;
  /** pooled ping-pong samples as 201 quantiles (0, 0.5, ..., 100 %), for the chart */
  pingQuantilesUs: number[];
  bulkMbit: number;
  mpcMsPer1000: number;
  /** MPC message-round latency p99 (ms), median over rounds */
  mpcRoundP99Ms: number;
  ttfbMs: number;
  ttfbFromReadyMs: number;
  directMs: number;
  directFromReadyMs: number;
}

export interface ConditionSummary {
  condition: ConditionId;
  systems: SystemSummary[];
}

export function summarize(condition: ConditionId, rounds: RoundResult[]): ConditionSummary {
  const systems: SystemSummary[] = [];
  for (const system of SYSTEMS) {
    const rs = rounds.filter((r) => r.system === system);
    if (rs.length === 0) continue;
    const ok = rs.filter((r) => !r.error);
    const pooled = ok.flatMap((r) => r.pingUs ?? []).sort((a, b) => a - b);
    const per = (f: (r: RoundResult) => number | undefined): number => median(ok.map(f).filter((x): x is number => x !== undefined));
    const pingPer = (p: number): number => per((r) => (r.pingUs?.length ? percentile(r.pingUs, p) : undefined));
    systems.push({
      system, rounds: ok.length, errors: rs.filter((r) => r.error).map((r) => r.error!),
      pingP50Us: pingPer(50), pingP99Us: pingPer(99), pingP999Us: pingPer(99.9), pingSamples: pooled.length,
      pingQuantilesUs: pooled.length ? Array.from({ length: 201 }, (_, i) => percentile(pooled, i / 2)) : [],
      bulkMbit: per((r) => r.bulkMbit), mpcMsPer1000: per((r) => r.mpcMsPer1000),
      mpcRoundP99Ms: per((r) => (r.mpcRoundMs?.length ? percentile(r.mpcRoundMs, 99) : undefined)),
      ttfbMs: per((r) => r.ttfbMs), ttfbFromReadyMs: per((r) => r.ttfbFromReadyMs),
      directMs: per((r) => r.directMs), directFromReadyMs: per((r) => r.directFromReadyMs),
    });
  }
  return { condition, systems };
}

const f = (x: number, digits = 0): string => (Number.isFinite(x) ? x.toFixed(digits) : '–');
const ratio = (x: number, ref: number): string => (Number.isFinite(x) && Number.isFinite(ref) && ref > 0 ? ` (${(x / ref).toFixed(2)}×)` : '');

export function markdownTable(c: ConditionSummary): string {
  const ref = c.systems.find((s) => s.system === 'tcp');
  const lines = [
    `**${CONDITION_LABEL[c.condition]}**`,
    '',
    '| system | ping p50 µs | p99 µs | p99.9 µs | MPC 3 parties, ms / 1000 rounds | MPC round p99 ms | bulk Mbit/s | first byte after up, ms | direct after up, ms |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const s of c.systems) {
    const ttfb = Number.isFinite(s.ttfbMs) ? `${f(s.ttfbMs)}${Number.isFinite(s.ttfbFromReadyMs) ? ` (${f(s.ttfbFromReadyMs, 1)} after ready)` : ''}` : '–';
    const direct = Number.isFinite(s.directMs) ? `${f(s.directMs)} (${f(s.directFromReadyMs)} after ready)` : '–';
    lines.push(`| ${SYSTEM_LABEL[s.system]}${s.errors.length ? ` ⚠${s.errors.length} failed` : ''} | ${f(s.pingP50Us)}${ratio(s.pingP50Us, ref?.pingP50Us ?? NaN)} | ${f(s.pingP99Us)} | ${f(s.pingP999Us)} `
      + `| ${f(s.mpcMsPer1000)}${ratio(s.mpcMsPer1000, ref?.mpcMsPer1000 ?? NaN)} | ${f(s.mpcRoundP99Ms, 2)}${ratio(s.mpcRoundP99Ms, ref?.mpcRoundP99Ms ?? NaN)} `
      + `| ${f(s.bulkMbit)}${ratio(s.bulkMbit, ref?.bulkMbit ?? NaN)} | ${ttfb} | ${direct} |`);
  }
  return lines.join('\n');
}

export interface RelayScale { pps?: number; rssMbWith10k?: number; agents?: number; error?: string }

export interface Verdict { target: string; met: boolean | null; measured: string }

export function verdicts(cs: ConditionSummary[], relay: RelayScale | null): Verdict[] {
  const get = (c: ConditionId, s: SystemId): SystemSummary | undefined => cs.find((x) => x.condition === c)?.systems.find((x) => x.system === s);
  const out: Verdict[] = [];
  const add = (target: string, ok: boolean | null, measured: string): void => { out.push({ target, met: ok, measured }); };
  const num = (x: number | undefined): x is number => x !== undefined && Number.isFinite(x);

  const tcp = get('loopback', 'tcp'), dir = get('loopback', 'direct'), rtc = get('loopback', 'webrtc');
  const rel = get('loopback', 'relay-udp'), ws = get('loopback', 'relay-ws');
  if (num(tcp?.pingP50Us) && num(dir?.pingP50Us)) {
    const d = dir.pingP50Us - tcp.pingP50Us;
    add('loopback ping: agent direct adds ≤ 60 µs p50 over raw TCP', d <= 60, `+${f(d)} µs (${f(dir.pingP50Us)} vs ${f(tcp.pingP50Us)} µs)`);
  } else add('loopback ping: agent direct adds ≤ 60 µs p50 over raw TCP', null, 'not measured');
  if (num(dir?.pingP50Us) && num(rtc?.pingP50Us)) add('loopback ping: agent direct beats WebRTC/SCTP (p50)', dir.pingP50Us < rtc.pingP50Us, `${f(dir.pingP50Us)} vs ${f(rtc.pingP50Us)} µs`);
  else add('loopback ping: agent direct beats WebRTC/SCTP (p50)', null, 'not measured');
  if (num(rel?.pingP50Us) && num(dir?.pingP50Us)) {
    const d = rel.pingP50Us - dir.pingP50Us;
    add('loopback ping: relay (UDP) adds ≤ 40 µs p50 over direct', d <= 40, `+${f(d)} µs (${f(rel.pingP50Us)} vs ${f(dir.pingP50Us)} µs)`
      + (num(ws?.pingP50Us) ? `; WebSocket relay +${f(ws.pingP50Us - dir.pingP50Us)} µs` : ''));
  } else add('loopback ping: relay (UDP) adds ≤ 40 µs p50 over direct', null, 'not measured');

  const wt = get('wan20', 'tcp'), wd = get('wan20', 'direct');
  if (num(wt?.mpcMsPer1000) && num(wd?.mpcMsPer1000)) add('MPC workload, 20 ms RTT: ≤ 1.05× raw TCP wall time', wd.mpcMsPer1000 <= 1.05 * wt.mpcMsPer1000,
    `${(wd.mpcMsPer1000 / wt.mpcMsPer1000).toFixed(3)}× (${f(wd.mpcMsPer1000)} vs ${f(wt.mpcMsPer1000)} ms / 1000 rounds)`);
  else add('MPC workload, 20 ms RTT: ≤ 1.05× raw TCP wall time', null, 'not measured (WAN needs root)');
  const lt = get('wan20loss2', 'tcp'), ld = get('wan20loss2', 'direct');
  if (num(lt?.mpcRoundP99Ms) && num(ld?.mpcRoundP99Ms)) add('MPC workload, 20 ms RTT + 2 % loss: p99 message latency ≤ 0.5× raw TCP', ld.mpcRoundP99Ms <= 0.5 * lt.mpcRoundP99Ms,
    `${(ld.mpcRoundP99Ms / lt.mpcRoundP99Ms).toFixed(2)}× (MPC round p99 ${f(ld.mpcRoundP99Ms, 1)} vs ${f(lt.mpcRoundP99Ms, 1)} ms)`
    + (num(ld.pingP99Us) && num(lt.pingP99Us) ? `; ping-pong p99 ${(ld.pingP99Us / lt.pingP99Us).toFixed(2)}× (${f(ld.pingP99Us / 1000, 1)} vs ${f(lt.pingP99Us / 1000, 1)} ms)` : ''));
  else add('MPC workload, 20 ms RTT + 2 % loss: p99 message latency ≤ 0.5× raw TCP', null, 'not measured (WAN needs root)');

  if (num(dir?.bulkMbit)) add('bulk, loopback: direct ≥ 1 Gbit/s', dir.bulkMbit >= 1000, `${f(dir.bulkMbit)} Mbit/s (raw TCP ${f(tcp?.bulkMbit ?? NaN)})`);
  else add('bulk, loopback: direct ≥ 1 Gbit/s', null, 'not measured');
  if (num(dir?.bulkMbit) && num(rel?.bulkMbit)) add('bulk, loopback: relay ≥ 80 % of direct', rel.bulkMbit >= 0.8 * dir.bulkMbit,
    `${f((100 * rel.bulkMbit) / dir.bulkMbit)} % (${f(rel.bulkMbit)} vs ${f(dir.bulkMbit)} Mbit/s; WebSocket ${f(ws?.bulkMbit ?? NaN)})`);
  else add('bulk, loopback: relay ≥ 80 % of direct', null, 'not measured');

  if (relay && relay.pps !== undefined) add('relay: ≥ 300k forwarded packets/s on one core', relay.pps >= 300_000, `${f(relay.pps / 1000)}k packets/s`);
  else add('relay: ≥ 300k forwarded packets/s on one core', null, relay?.error ?? 'not measured here (npm run bench -- --relay-scale, or npm run bench:relay)');
  if (relay && relay.rssMbWith10k !== undefined) add('relay: 10k registered agents in ≤ 100 MB RSS', relay.rssMbWith10k <= 100, `${f(relay.rssMbWith10k, 1)} MB with ${relay.agents} agents`);
  else add('relay: 10k registered agents in ≤ 100 MB RSS', null, relay?.error ?? 'not measured');

  // "one relay round trip plus the handshake": both are a few ms of work plus path RTTs;
  // the bound used here is 3 path RTTs (registration, handshake, data) + 25 ms of processing.
  for (const c of ['loopback', 'wan20'] as const) {
    const rtt = c === 'loopback' ? 0 : 20;
    const r = get(c, 'relay-udp'), d = get(c, 'direct');
    const worst = Math.max(r?.ttfbFromReadyMs ?? NaN, d?.ttfbFromReadyMs ?? NaN);
    if (num(worst) && !Number.isNaN(worst)) add(`first byte after up (${CONDITION_LABEL[c]}): ≤ relay RTT + handshake (bound: ${3 * rtt + 25} ms after the agents are ready)`,
      worst <= 3 * rtt + 25, `direct mode ${f(d?.ttfbFromReadyMs ?? NaN, 1)} ms, relay-only ${f(r?.ttfbFromReadyMs ?? NaN, 1)} ms after ready (${f(d?.ttfbMs ?? NaN)} / ${f(r?.ttfbMs ?? NaN)} ms after spawning the processes)`);
  }
  const wdir = get('wan20', 'direct') ?? dir;
  if (num(wdir?.directMs)) add('direct path established within 2 s', wdir.directMs <= 2000,
    `${f(wdir.directMs)} ms after spawn (${f(wdir.directFromReadyMs)} after ready), ${wdir === dir ? 'loopback' : '20 ms RTT, no NAT (the EIM↔EIM NAT case is the lab\'s)'}`);
  return out;
}

export function verdictText(vs: Verdict[]): string {
  return vs.map((v) => `- ${v.met === null ? '[n/a]  ' : v.met ? '[met]    ' : '[NOT MET]'} ${v.target}: ${v.measured}`).join('\n');
}
