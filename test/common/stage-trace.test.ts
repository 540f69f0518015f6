// src/common/stage-trace.ts (the agents' per-stage timestamps) and its reader
// bench/stage-report.ts: tags from the bytes, the ring written at exit in order, nothing
// written when tracing is off, and the stage-to-stage breakdown of matched messages.
// The recording runs in a child process (the env var is read at module load) from dist/.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PING_TAG_BIT, PING_TAG_MAGIC, STAGES, Stage, tagOf } from '../../src/common/stage-trace.js';
import { breakdown, parseTrace, type Trace } from '../../bench/stage-report.js';

const DIST_TRACE = resolve(__dirname, '../../dist/src/common/stage-trace.js');

function pingBytes(seq: number): Buffer {
  const b = Buffer.alloc(64, 0x61);
  b.writeUInt32LE(PING_TAG_MAGIC, 0);
  b.writeUInt32LE(seq, 4);
  return b;
}

/** Runs `body` (JS using m = the stage-trace module) in a child with `env`; returns the trace file path. */
function record(body: string, env: Record<string, string>): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'stage-trace-'));
  const file = join(dir, 'agent0.trace');
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', `const m = await import(${JSON.stringify(DIST_TRACE)}); ${body}`],
    { env: { ...process.env, MPYC_TRACE: '', ...env, ...(env.MPYC_TRACE === 'FILE' ? { MPYC_TRACE: file } : {}) }, encoding: 'utf8', timeout: 20_000 });
  expect(r.status, r.stderr).toBe(0);
  return { dir, file };
}

describe('tagOf', () => {
  it('reads a ping message\'s sequence number, with the ping bit', () => {
    expect(tagOf(pingBytes(7))).toBe((PING_TAG_BIT | 7) >>> 0);
  });
  it('reads the low 31 bits of an MPyC frame\'s program counter when the chunk is exactly one frame', () => {
    const frame = Buffer.alloc(12 + 32);
    frame.writeBigInt64LE(0x1234_5678_9abc_def0n, 0);
    frame.writeUInt32LE(32, 8);
    expect(tagOf(frame)).toBe(0x1abcdef0);
    expect(tagOf(frame.subarray(0, 40))).toBe(0); // a partial frame carries no tag
  });
  it('gives 0 for other bytes and short chunks', () => {
    expect(tagOf(Buffer.alloc(64, 0x61))).toBe(0);
    expect(tagOf(Buffer.alloc(3))).toBe(0);
  });
});

describe('recording', () => {
  it('writes every mark at exit, oldest first, with stage, flow and tag', () => {
    const { dir, file } = record(`
      m.mark(m.Stage.built, 2);
      m.markBytes(m.Stage.tcpRead, 1, Buffer.from(${JSON.stringify([...pingBytes(9)])}));
      m.mark(m.Stage.sent, 70000);`, { MPYC_TRACE: 'FILE' });
    try {
      const t = parseTrace(readFileSync(file), 0);
      if ('error' in t) throw new Error(t.error);
      expect([...t.stage]).toEqual([Stage.built, Stage.tcpRead, Stage.sent]);
      expect([...t.flow]).toEqual([2, 1, 70000 & 0xffff]);
      expect([...t.tag]).toEqual([0, (PING_TAG_BIT | 9) >>> 0, 0]);
      expect(t.t[1]! >= t.t[0]! && t.t[2]! >= t.t[1]!).toBe(true);
    } finally { rmSync(dir, { recursive: true, force: true }); }
  });

  it('keeps the newest MPYC_TRACE_EVENTS events, still in order, when the ring wraps', () => {
    const { dir, file } = record('for (let i = 0; i < 1500; i++) m.mark(i % 8, i);', { MPYC_TRACE: 'FILE', MPYC_TRACE_EVENTS: '1024' });
    try {
      const t = parseTrace(readFileSync(file), 0);
      if ('error' in t) throw new Error(t.error);
      expect(t.flow.length).toBe(1024);
      expect(t.flow[0]).toBe(1500 - 1024);
      expect(t.flow[1023]).toBe(1499);
      expect([...t.flow].every((f, i) => i === 0 || f === t.flow[i - 1]! + 1)).toBe(true);
    } finally { rmSync(dir, { recursive: true, force: true }); }
  });

  it('records nothing and writes no file without MPYC_TRACE', () => {
    const { dir, file } = record('m.mark(m.Stage.sent, 1); if (m.traceEnabled) process.exit(3);', {});
    try { expect(existsSync(file)).toBe(false); } finally { rmSync(dir, { recursive: true, force: true }); }
  });
});

describe('parseTrace', () => {
  it('rejects malformed files without throwing', () => {
    expect('error' in (parseTrace(Buffer.from('garbage'), 0) as object)).toBe(true);
    expect('error' in (parseTrace(Buffer.from('{"format":"mpyc-stage-trace/1","events":2,"monoOriginMs":0}\n123'), 0) as object)).toBe(true);
    expect('error' in (parseTrace(Buffer.from('{"format":"other","events":0,"monoOriginMs":0}\n'), 0) as object)).toBe(true);
  });
});

describe('breakdown', () => {
  /** a trace from (stage, flow, tag, ms) events */
  const trace = (party: number, ev: Array<[number, number, number, number]>): Trace => ({
    party, stage: Uint8Array.from(ev.map((e) => e[0])), flow: Uint16Array.from(ev.map((e) => e[1])),
    tag: Uint32Array.from(ev.map((e) => e[2])), t: Float64Array.from(ev.map((e) => e[3])),
  });
  const S = Stage;
  const tag = (PING_TAG_BIT | 1) >>> 0;

  it('matches a message across two agents by its tag and times every stage', () => {
    // party 0 sends to party 1 (flow 1); a standalone ACK (built/sealed/sent before the read) must be skipped
    const a = trace(0, [[S.built, 1, 0, 0.5], [S.sealed, 1, 0, 0.6], [S.sent, 1, 0, 0.7],
      [S.tcpRead, 1, tag, 1.0], [S.built, 1, 0, 1.010], [S.sealed, 1, 0, 1.030], [S.sent, 1, 0, 1.035]]);
    // party 1: an ACK received and opened before, then the message
    const b = trace(1, [[S.received, 0, 0, 1.05], [S.opened, 0, 0, 1.06],
      [S.received, 0, 0, 1.100], [S.opened, 0, 0, 1.120], [S.delivered, 0, 0, 1.150], [S.written, 0, tag, 1.200]]);
    const r = breakdown([a, b], 'ping');
    expect(r.messages).toBe(1);
    expect(r.totalUs.length).toBe(1);
    const got = r.stagesUs.map((x) => Math.round(x[0]!));
    expect(got).toEqual([10, 20, 5, 65, 20, 30, 50]);
    expect(Math.round(r.totalUs[0]!)).toBe(200);
    expect(breakdown([a, b], 'mpc').messages).toBe(0); // a ping tag is not an MPC message
    expect(STAGES.length - 1).toBe(got.length);
  });

  it('counts a message whose other end is missing as unmatched', () => {
    const a = trace(0, [[S.tcpRead, 1, tag, 1], [S.built, 1, 0, 1.01], [S.sealed, 1, 0, 1.02], [S.sent, 1, 0, 1.03]]);
    const b = trace(1, [[S.received, 0, 0, 1.1]]);
    const r = breakdown([a, b], 'ping');
    expect(r.messages).toBe(1);
    expect(r.unmatched).toBe(1);
    expect(r.totalUs.length).toBe(0);
  });
});
