// Per-stage timestamps of the data path, for the benchmark's latency breakdown (issue 16):
// where each microsecond of one message goes between the TCP read in one agent and the
// TCP write in the other. Off unless the process is started with MPYC_TRACE=<file>; then
// mark() stores performance.now(), the stage, a flow number and a message tag into a
// preallocated ring (the last MPYC_TRACE_EVENTS events, default 2^20) that is written to
// <file> when the process exits. Disabled, mark() and markBytes() are empty functions
// (V8 inlines them away): the data path pays nothing for the call sites.
//
// Correlation, without changing any wire format: at the two ends (TCP read, TCP write)
// markBytes() derives a tag from the bytes themselves (the bench's ping messages carry a
// sequence number; an MPyC frame carries its program counter); the stages in between
// are matched by their order within (process, flow). The reader is bench/stage-report.ts.
//
// File layout (all little-endian), events oldest first:
//   one JSON line: {"format":"mpyc-stage-trace/1","pid","monoOriginMs","events","stages"}
//   events × f64  time, ms since this process's performance.timeOrigin; add monoOriginMs
//                 for CLOCK_MONOTONIC ms, the same clock in every process of the machine
//   events × u32  tag (0: none)
//   events × u16  flow (the caller's connection / peer number; 0 when it has none)
//   events × u8   stage (index into STAGES)
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

/** The stages of one message, in path order. */
export const STAGES = ['tcpRead', 'built', 'sealed', 'sent', 'received', 'opened', 'delivered', 'written'] as const;
export type StageName = (typeof STAGES)[number];
/** Stage numbers for the call sites: mark(Stage.sealed, peerIndex). */
export const Stage: { readonly [K in StageName]: number } = Object.freeze(
  Object.fromEntries(STAGES.map((s, i) => [s, i])) as { [K in StageName]: number },
);

export const TRACE_FORMAT = 'mpyc-stage-trace/1';
/** 'MPTR' read as u32 LE: the first 4 bytes of a bench ping message, then its u32 LE sequence number */
export const PING_TAG_MAGIC = 0x5254504d;
/** MPyC frame header: pc i64 LE (0..8), payload size u32 LE (8..12) */
const MPYC_HEADER_BYTES = 12;

/** Ring size bounds: at least a few messages, at most 16 Mi events (240 MiB) per process. */
const MIN_EVENTS = 1024;
const MAX_EVENTS = 1 << 24;
const DEFAULT_EVENTS = 1 << 20;

/** Tags of bench ping messages have this bit set; tags of MPyC frames have it clear. */
export const PING_TAG_BIT = 0x80000000;

/**
 * The message tag of a chunk at the TCP ends, 0 when it has none: a bench ping message
 * (PING_TAG_MAGIC, seq) gives PING_TAG_BIT | seq; a chunk that is exactly one MPyC frame
 * gives the low 31 bits of its program counter (or 1 when those are 0).
 */
export function tagOf(b: Uint8Array): number {
  if (b.length >= 8 && readU32(b, 0) === PING_TAG_MAGIC) return (PING_TAG_BIT | readU32(b, 4)) >>> 0;
  if (b.length >= MPYC_HEADER_BYTES && readU32(b, 8) === b.length - MPYC_HEADER_BYTES) return (readU32(b, 0) & 0x7fffffff) || 1;
  return 0;
}

function readU32(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
}

class Ring {
  readonly times: Float64Array;
  readonly tags: Uint32Array;
  readonly flows: Uint16Array;
  readonly stages: Uint8Array;
  count = 0;

  constructor(readonly capacity: number) {
    this.times = new Float64Array(capacity);
    this.tags = new Uint32Array(capacity);
    this.flows = new Uint16Array(capacity);
    this.stages = new Uint8Array(capacity);
  }

  push(stage: number, flow: number, tag: number): void {
    const i = this.count++ % this.capacity;
    this.times[i] = performance.now();
    this.stages[i] = stage;
    this.flows[i] = flow;
    this.tags[i] = tag;
  }

  /** The file contents, events oldest first. */
  serialize(monoOriginMs: number): Buffer {
    const n = Math.min(this.count, this.capacity);
    const start = this.count > this.capacity ? this.count % this.capacity : 0;
    const order = (a: Float64Array | Uint32Array | Uint16Array | Uint8Array): Buffer => {
      const size = a.BYTES_PER_ELEMENT;
      const all = Buffer.from(a.buffer, a.byteOffset, a.byteLength);
      return start === 0 ? all.subarray(0, n * size) : Buffer.concat([all.subarray(start * size), all.subarray(0, start * size)]);
    };
    const header = JSON.stringify({ format: TRACE_FORMAT, pid: process.pid, monoOriginMs, events: n, stages: STAGES });
    return Buffer.concat([Buffer.from(header + '\n'), order(this.times), order(this.tags), order(this.flows), order(this.stages)]);
  }
}

function ringSize(env: string | undefined): number {
  const n = Number(env);
  return Number.isInteger(n) && n > 0 ? Math.min(MAX_EVENTS, Math.max(MIN_EVENTS, n)) : DEFAULT_EVENTS;
}

const traceFile = process.env.MPYC_TRACE;
/** true when this process records a trace (MPYC_TRACE is set) */
export const traceEnabled = traceFile !== undefined && traceFile !== '';

function noop(): void { /* tracing off */ }

/**
 * This process's performance.now() origin on CLOCK_MONOTONIC (process.hrtime), the clock
 * every process of the machine shares; both read uv_hrtime, so the difference is
 * constant. A preemption between the two reads would shift it by the time preempted (on
 * a loaded machine, tens of ms): bracket the hrtime read by two now() reads and keep the
 * tightest of a few tries.
 */
function monotonicOrigin(): number {
  let best = Infinity, origin = 0;
  for (let i = 0; i < 20 && best > 0.01; i++) {
    const before = performance.now();
    const mono = Number(process.hrtime.bigint()) / 1e6;
    const after = performance.now();
    if (after - before < best) { best = after - before; origin = mono - (before + after) / 2; }
  }
  return origin;
}

let ring: Ring | null = null;
if (traceEnabled) {
  ring = new Ring(ringSize(process.env.MPYC_TRACE_EVENTS));
  const monoOriginMs = monotonicOrigin();
  process.once('exit', () => {
    try { writeFileSync(traceFile!, ring!.serialize(monoOriginMs)); } catch { /* a trace is best effort; never fail the exit */ }
  });
}

/** Records that a message passed `stage` on connection/peer `flow` (0..65535). */
export const mark: (stage: number, flow?: number) => void = ring
  ? (stage, flow = 0) => ring!.push(stage, flow & 0xffff, 0)
  : noop;

/** Like mark(), at a TCP end: also records the tag of the chunk (see tagOf). */
export const markBytes: (stage: number, flow: number, bytes: Uint8Array) => void = ring
  ? (stage, flow, bytes) => ring!.push(stage, flow & 0xffff, tagOf(bytes))
  : noop;
