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
  /** the slowest party's first MPC round (ms, connections included), median over rounds */
  mpcFirstRoundMs: number;
  ttfbMs: number;
  ttfbFromReadyMs: number;
  directMs: number;
  directFromReadyMs: number;
  /** UDP RcvbufErrors during a bulk round: median and largest over rounds */
  rcvbufErrors: number;
  rcvbufErrorsMax: number;
  /** proxy CPU cost, median over rounds */
  cpuMsPer1000Pings: number;
  cpuSPer1000Mpc: number;
  cpuSPer100MB: number;
  /** round attempts that stalled and were retried (all rounds) */
  stalls: number;
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
      mpcFirstRoundMs: per((r) => r.mpcFirstRoundMs),
      ttfbMs: per((r) => r.ttfbMs), ttfbFromReadyMs: per((r) => r.ttfbFromReadyMs),
      directMs: per((r) => r.directMs), directFromReadyMs: per((r) => r.directFromReadyMs),
      rcvbufErrors: per((r) => r.rcvbufErrors), rcvbufErrorsMax: Math.max(...ok.map((r) => r.rcvbufErrors ?? -Infinity)),
      cpuMsPer1000Pings: per((r) => r.cpuMsPer1000Pings), cpuSPer1000Mpc: per((r) => r.cpuSPer1000Mpc), cpuSPer100MB: per((r) => r.cpuSPer100MB),
      stalls: rs.reduce((a, r) => a + (r.stalls ?? 0), 0),
    });
  }
  return { condition, systems };
}

export const f = (x: number, digits = 0): string => (Number.isFinite(x) ? x.toFixed(digits) : '–');
const ratio = (x: number, ref: number): string => (Number.isFinite(x) && Number.isFinite(ref) && ref > 0 ? ` (${(x / ref).toFixed(2)}×)` : '');

export function markdownTable(c: ConditionSummary): string {
  const ref = c.systems.find((s) => s.system === 'tcp');
  const lines = [
    `**${CONDITION_LABEL[c.condition]}**`,
    '',
    '| system | ping p50 µs | p99 µs | p99.9 µs | MPC 3 parties, ms / 1000 rounds | MPC round p99 ms | MPC first round ms | bulk Mbit/s | UDP drops in bulk | CPU ms / 1000 pings | CPU s / 1000 MPC rounds | CPU s / 100 MB | first byte after up, ms | direct after up, ms |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const s of c.systems) {
    const ttfb = Number.isFinite(s.ttfbMs) ? `${f(s.ttfbMs)}${Number.isFinite(s.ttfbFromReadyMs) ? ` (${f(s.ttfbFromReadyMs, 1)} after ready)` : ''}` : '–';
    const direct = Number.isFinite(s.directMs) ? `${f(s.directMs)} (${f(s.directFromReadyMs)} after ready)` : '–';
    const drops = Number.isFinite(s.rcvbufErrors) ? `${f(s.rcvbufErrors)}${s.rcvbufErrorsMax > s.rcvbufErrors ? ` (max ${f(s.rcvbufErrorsMax)})` : ''}` : '–';
    const marks = `${s.errors.length ? ` ⚠${s.errors.length} failed` : ''}${s.stalls ? ` ↻${s.stalls} stalled, retried` : ''}`;
    lines.push(`| ${SYSTEM_LABEL[s.system]}${marks} | ${f(s.pingP50Us)}${ratio(s.pingP50Us, ref?.pingP50Us ?? NaN)} | ${f(s.pingP99Us)} | ${f(s.pingP999Us)} `
      + `| ${f(s.mpcMsPer1000)}${ratio(s.mpcMsPer1000, ref?.mpcMsPer1000 ?? NaN)} | ${f(s.mpcRoundP99Ms, 2)}${ratio(s.mpcRoundP99Ms, ref?.mpcRoundP99Ms ?? NaN)} | ${f(s.mpcFirstRoundMs, 1)} `
      + `| ${f(s.bulkMbit)}${ratio(s.bulkMbit, ref?.bulkMbit ?? NaN)} | ${drops} | ${f(s.cpuMsPer1000Pings)} | ${f(s.cpuSPer1000Mpc, 2)} | ${f(s.cpuSPer100MB, 2)} | ${ttfb} | ${direct} |`);
  }
  return lines.join('\n');
}

export interface RelayScale {
  /** relay (one process) and bare Node forwarder packets/s, measured back to back */
  pps?: number;
  floorPps?: number;
  rssMbWith10k?: number;
  agents?: number;
  /** packets/s per worker count, or why it was not measured */
  workers?: Array<{ workers: number; pps: number }> | string;
  error?: string;
}
