// Per-stage latency breakdown from the agents' stage traces (src/common/stage-trace.ts):
// for every message that entered one agent by a TCP read and left another by a TCP write,
// the time between consecutive stages — tcpRead → built → sealed → sent → received →
// opened → delivered → written — as p50 / p99 per stage.
//
// Correlation (no wire format carries an id): the two TCP ends are matched by the tag of
// the bytes (ping sequence number or MPyC program counter) and the flow numbers (the
// sender's tcpRead has the receiver's party index, the receiver's write the sender's);
// in between, within one process and flow, the sender side takes the first unclaimed
// event of the next stage after the previous one (FIFO), the receiver side the last one
// before the next stage (open → deliver → write run in one synchronous call chain).
// "received" is marked before the peer is known, so it is matched over all flows.
// Usage: node dist/bench/stage-report.js DIR...   (each DIR: agent0.trace, agent1.trace, ...)
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PING_TAG_BIT, STAGES, Stage, TRACE_FORMAT } from '../src/common/stage-trace.js';
import { percentile } from './lib/stats.js';

export interface Trace { party: number; t: Float64Array; tag: Uint32Array; flow: Uint16Array; stage: Uint8Array }

/** Parses one trace file; null (with the reason) when it is malformed. Never throws. */
export function parseTrace(buf: Buffer, party: number): Trace | { error: string } {
  const nl = buf.indexOf(0x0a);
  if (nl < 0 || nl > 4096) return { error: 'no header line' };
  let h: { format?: unknown; events?: unknown; monoOriginMs?: unknown };
  try { h = JSON.parse(buf.subarray(0, nl).toString('utf8')) as typeof h; } catch { return { error: 'header is not JSON' }; }
  const n = h.events, origin = h.monoOriginMs;
  if (h.format !== TRACE_FORMAT || typeof n !== 'number' || !Number.isInteger(n) || n < 0 || typeof origin !== 'number') return { error: 'not a stage trace header' };
  const body = buf.subarray(nl + 1);
  if (body.length !== n * 15) return { error: `body is ${body.length} bytes, ${n} events need ${n * 15}` };
  // copy into aligned arrays (the body starts at an arbitrary offset)
  const section = (off: number, bytes: number): ArrayBuffer => body.buffer.slice(body.byteOffset + off, body.byteOffset + off + bytes) as ArrayBuffer;
  const t = new Float64Array(section(0, n * 8)).map((x) => x + origin);
  const tag = new Uint32Array(section(n * 8, n * 4));
  const flow = new Uint16Array(section(n * 12, n * 2));
  const stage = new Uint8Array(section(n * 14, n));
  if (stage.some((s) => s >= STAGES.length)) return { error: 'unknown stage number' };
  return { party, t, tag, flow, stage };
}

/** The agent<k>.trace files of a directory. */
export function readTraces(dir: string): Trace[] {
  const out: Trace[] = [];
  for (let k = 0; k < 16; k++) {
    const file = join(dir, `agent${k}.trace`);
    if (!existsSync(file)) continue;
    const r = parseTrace(readFileSync(file), k);
    if ('error' in r) process.stderr.write(`stage-report: ${file}: ${r.error}\n`);
    else out.push(r);
  }
  return out;
}

/** indices of one stage's events per flow (or all flows with flow = -1), in time order */
function index(tr: Trace): Map<string, number[]> {
  const m = new Map<string, number[]>();
  for (let i = 0; i < tr.stage.length; i++) {
    for (const key of [`${tr.stage[i]}:${tr.flow[i]}`, `${tr.stage[i]}:*`]) {
      let l = m.get(key);
      if (!l) m.set(key, (l = []));
      l.push(i);
    }
  }
  return m;
}

/** first index in the sorted list whose time is ≥ t and > after (FIFO claim) */
function firstAtOrAfter(tr: Trace, list: number[] | undefined, t: number, after: number): number {
  if (!list) return -1;
  for (const i of list) if (i > after && tr.t[i]! >= t) return i;
  return -1;
}

/** last index in the sorted list whose time is ≤ t */
function lastAtOrBefore(tr: Trace, list: number[] | undefined, t: number): number {
  if (!list) return -1;
  let best = -1;
  for (const i of list) { if (tr.t[i]! <= t) best = i; else break; }
  return best;
}

export type MessageKind = 'ping' | 'mpc';
export interface Breakdown { kind: MessageKind; messages: number; unmatched: number; stagesUs: number[][]; totalUs: number[] }

/** Stage-to-stage durations (µs) of every matched message of `kind`. */
export function breakdown(traces: Trace[], kind: MessageKind): Breakdown {
  const idx = new Map(traces.map((tr) => [tr.party, index(tr)]));
  const byParty = new Map(traces.map((tr) => [tr.party, tr]));
  const stagesUs: number[][] = STAGES.slice(1).map(() => []);
  const totalUs: number[] = [];
  let messages = 0, unmatched = 0;
  const isKind = (tag: number): boolean => tag !== 0 && ((tag & PING_TAG_BIT) !== 0) === (kind === 'ping');
  for (const src of traces) {
    const si = idx.get(src.party)!;
    const claimed = new Map<string, number>(); // FIFO position per (stage, flow) on the send side
    for (const r of si.get(`${Stage.tcpRead}:*`) ?? []) {
      const tag = src.tag[r]!;
      if (!isKind(tag)) continue;
      messages++;
      const dstParty = src.flow[r]!;
      const dst = byParty.get(dstParty), di = idx.get(dstParty);
      const fwd = [r];
      let ok = true;
      for (const st of [Stage.built, Stage.sealed, Stage.sent]) {
        const key = `${st}:${dstParty}`;
        const j = firstAtOrAfter(src, si.get(key), src.t[fwd.at(-1)!]!, claimed.get(key) ?? -1);
        if (j < 0) { ok = false; break; }
        claimed.set(key, j);
        fwd.push(j);
      }
      if (!ok || !dst || !di) { unmatched++; continue; }
      // the receiver's write of this message: same tag, from src, after the send
      const sentAt = src.t[fwd[3]!]!;
      const w = (di.get(`${Stage.written}:${src.party}`) ?? []).find((i) => dst.tag[i] === tag && dst.t[i]! >= sentAt);
      if (w === undefined) { unmatched++; continue; }
      const back = [w];
      for (const key of [`${Stage.delivered}:${src.party}`, `${Stage.opened}:${src.party}`, `${Stage.received}:*`]) {
        const j = lastAtOrBefore(dst, di.get(key), dst.t[back.at(-1)!]!);
        if (j < 0 || dst.t[j]! < sentAt - 1) { ok = false; break; }
        back.push(j);
      }
      if (!ok) { unmatched++; continue; }
      const times = [...fwd.map((i) => src.t[i]!), ...back.reverse().map((i) => dst.t[i]!)];
      for (let s = 1; s < times.length; s++) stagesUs[s - 1]!.push((times[s]! - times[s - 1]!) * 1000);
      totalUs.push((times.at(-1)! - times[0]!) * 1000);
    }
  }
  return { kind, messages, unmatched, stagesUs, totalUs };
}

const us = (x: number): string => (Number.isFinite(x) ? (x < 10 ? x.toFixed(1) : x.toFixed(0)) : '–');

export function breakdownTable(b: Breakdown, title: string): string {
  const lines = [`**${title}** (${b.totalUs.length} messages matched of ${b.messages}${b.unmatched ? `, ${b.unmatched} unmatched` : ''})`, '',
    '| stage | p50 µs | p99 µs |', '|---|---:|---:|'];
  STAGES.slice(1).forEach((s, i) => lines.push(`| ${STAGES[i]} → ${s} | ${us(percentile(b.stagesUs[i]!, 50))} | ${us(percentile(b.stagesUs[i]!, 99))} |`));
  lines.push(`| **tcpRead → written (one way, both agents)** | **${us(percentile(b.totalUs, 50))}** | **${us(percentile(b.totalUs, 99))}** |`);
  return lines.join('\n');
}

/** Pools the breakdowns of several trace directories (rounds). */
export function pooled(dirs: string[], kind: MessageKind): Breakdown {
  const all = dirs.map((d) => breakdown(readTraces(d), kind));
  return {
    kind, messages: all.reduce((a, b) => a + b.messages, 0), unmatched: all.reduce((a, b) => a + b.unmatched, 0),
    stagesUs: STAGES.slice(1).map((_, i) => all.flatMap((b) => b.stagesUs[i]!)), totalUs: all.flatMap((b) => b.totalUs),
  };
}

if (process.argv[1]?.endsWith('stage-report.js') && process.argv.length > 2) {
  const dirs = process.argv.slice(2);
  for (const kind of ['ping', 'mpc'] as const) {
    const b = pooled(dirs, kind);
    if (b.messages) process.stdout.write(`${breakdownTable(b, kind === 'ping' ? 'ping-pong messages' : 'MPC round messages')}\n\n`);
  }
}
