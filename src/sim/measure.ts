// The three measurements of issue #4 item 8, run in the deterministic simulator. Used by
// bench/transport-sim.ts (prints the table, writes docs/transport-results.md) and by the
// tests (which keep the targets from regressing).
import { SimPair } from './harness.js';
import type { LinkConfig } from './network.js';

export interface PingPongResult {
  rounds: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

/**
 * (a) `size`-byte ping-pong on one stream: a writes, b echoes as soon as the whole message
 * is readable, a times the round; the next round starts when the echo is complete.
 */
export function pingPong(opts: { seed?: number; rounds?: number; size?: number; oneWayMs?: number; loss?: number } = {}): PingPongResult {
  const { seed = 1, rounds = 2000, size = 100, oneWayMs = 10, loss = 0.02 } = opts;
  const link: LinkConfig = { delayMs: oneWayMs, loss };
  const sim = new SimPair(seed, { ab: link, ba: link });
  const msg = new Uint8Array(size).fill(0x5a);
  const times: number[] = [];
  let start = 0;
  let atA = 0;
  let atB = 0;
  let id = -1;
  const ping = () => {
    start = sim.now;
    atA = 0;
    if (sim.a.conn.write(id, msg) !== size) throw new Error('ping-pong: write refused');
  };
  sim.b.onEvents = (evs) => {
    for (const e of evs) {
      if (e.type !== 'open' && e.type !== 'readable') continue;
      let c;
      while ((c = sim.b.conn.read(e.id))) {
        atB += c.length;
        while (atB >= size) {
          atB -= size;
          sim.b.conn.write(e.id, msg);
        }
      }
    }
  };
  sim.a.onEvents = (evs) => {
    for (const e of evs) {
      if (e.type !== 'readable') continue;
      let c;
      while ((c = sim.a.conn.read(e.id))) atA += c.length;
      if (atA >= size) {
        times.push(sim.now - start);
        if (times.length < rounds) ping();
      }
    }
  };
  sim.at(0, () => {
    id = sim.a.conn.openStream(new Uint8Array([1]));
    ping();
  });
  sim.run(rounds * 50 * oneWayMs + 60_000, () => times.length >= rounds);
  const sorted = [...times].sort((x, y) => x - y);
  return {
    rounds: times.length,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    maxMs: sorted[sorted.length - 1] ?? NaN,
    meanMs: times.reduce((s, x) => s + x, 0) / Math.max(1, times.length),
  };
}

export interface BulkResult {
  bytes: number;
  durationMs: number;
  goodputMbps: number;
  /** goodput after the first second (slow start excluded) */
  steadyMbps: number;
  intact: boolean;
  packetsLost: number;
  queueDropped: number;
  cwndViolations: number;
}

interface Receiver {
  got: Uint8Array[];
  bytes: number;
  fin: boolean;
  /** (time, cumulative bytes) at every read */
  progress: Array<[number, number]>;
}

/** opens one stream a→b, writes `data` with back-pressure, finishes; b reads everything */
function startBulk(sim: SimPair, data: Uint8Array): Receiver {
  const rx: Receiver = { got: [], bytes: 0, fin: false, progress: [] };
  sim.b.onEvents = (evs) => {
    for (const e of evs) {
      if (e.type === 'open' || e.type === 'readable' || e.type === 'fin') {
        let c;
        while ((c = sim.b.conn.read(e.id))) {
          rx.got.push(c);
          rx.bytes += c.length;
          rx.progress.push([sim.now, rx.bytes]);
        }
      }
      if (e.type === 'fin') rx.fin = true;
    }
  };
  let off = 0;
  let id = -1;
  const pump = () => {
    while (off < data.length) {
      const n = sim.a.conn.write(id, data.subarray(off, Math.min(data.length, off + 256 * 1024)));
      if (n === 0) break;
      off += n;
    }
    if (off === data.length) sim.a.conn.finish(id);
  };
  sim.a.onEvents = (evs) => {
    for (const e of evs) if (e.type === 'writable') pump();
  };
  sim.at(0, () => {
    id = sim.a.conn.openStream(new Uint8Array([2]));
    pump();
  });
  return rx;
}

function pattern(n: number): Uint8Array {
  const d = new Uint8Array(n);
  for (let i = 0; i < n; i++) d[i] = (i * 131 + (i >>> 11)) & 0xff;
  return d;
}

function intact(rx: Receiver, data: Uint8Array): boolean {
  if (rx.bytes !== data.length) return false;
  let off = 0;
  for (const c of rx.got) {
    for (let i = 0; i < c.length; i++) if (c[i] !== data[off + i]) return false;
    off += c.length;
  }
  return true;
}

/** (b) one bulk stream through a bottleneck (`mbps`, drop-tail queue of `queueBdp` × BDP), no loss */
export function bulkGoodput(opts: { seed?: number; bytes?: number; mbps?: number; rttMs?: number; queueBdp?: number } = {}): BulkResult {
  const { seed = 1, bytes = 50_000_000, mbps = 100, rttMs = 20, queueBdp = 1 } = opts;
  const rate = (mbps * 1e6) / 8 / 1000; // bytes per ms
  const bdp = rate * rttMs;
  const sim = new SimPair(seed, {
    ab: { delayMs: rttMs / 2, rateBytesPerMs: rate, queueBytes: Math.round(queueBdp * bdp) },
    ba: { delayMs: rttMs / 2 },
  });
  const data = pattern(bytes);
  const rx = startBulk(sim, data);
  const end = sim.run(600_000, () => rx.fin);
  const after1s = rx.progress.find(([t]) => t >= 1000);
  const steady = after1s && end > after1s[0] ? ((rx.bytes - after1s[1]) * 8) / ((end - after1s[0]) * 1000) : NaN;
  const s = sim.a.conn.stats();
  return {
    bytes: rx.bytes,
    durationMs: end,
    goodputMbps: (rx.bytes * 8) / (end * 1000),
    steadyMbps: steady,
    intact: rx.fin && intact(rx, data),
    packetsLost: s.packetsLost,
    queueDropped: sim.ab.stats.queueDropped,
    cwndViolations: s.cwndViolations + sim.b.conn.stats().cwndViolations,
  };
}

export interface PathSwitchResult {
  bytes: number;
  switchAtMs: number;
  /** bytes missing or wrong at the receiver (must be 0) */
  bytesLost: number;
  /** extra bytes delivered to the application (must be 0) */
  bytesDuplicated: number;
  /** longest gap in application delivery in the second after the switch (counted from the last delivery before it) */
  stallMs: number;
  /** the same statistic over the second before the switch (baseline: loss recovery on the old path) */
  baselineGapMs: number;
  /** goodput on the old path (before) and the new path (after the switch + 1 s) */
  beforeMbps: number;
  afterMbps: number;
  intact: boolean;
}

/**
 * (c) a bulk transfer that starts on a 40 ms RTT relay path and moves at `switchAtMs` to a
 * 10 ms RTT direct path (both 100 Mbit/s bottlenecks with a 1-BDP queue); the old path's
 * packets still in flight keep arriving after the switch (unless `oldPathDies`: then they
 * are lost, as after a NAT rebinding).
 */
export function pathSwitch(opts: { seed?: number; bytes?: number; switchAtMs?: number; oldPathDies?: boolean } = {}): PathSwitchResult {
  const { seed = 1, bytes = 50_000_000, switchAtMs = 1500, oldPathDies = false } = opts;
  const rate = 12_500;
  const mk = (rtt: number) => ({
    ab: { delayMs: rtt / 2, rateBytesPerMs: rate, queueBytes: rate * rtt },
    ba: { delayMs: rtt / 2 },
  });
  const sim = new SimPair(seed, mk(40));
  const data = pattern(bytes);
  const rx = startBulk(sim, data);
  sim.switchPath(switchAtMs, mk(10), { oldPathDies });
  sim.run(600_000, () => rx.fin);
  /** longest gap between application deliveries that ends in (from, to], counted from the last delivery ≤ from */
  const maxGap = (from: number, to: number) => {
    let prev = -Infinity;
    let gap = 0;
    for (const [t] of rx.progress) {
      if (t <= from) {
        prev = t;
        continue;
      }
      if (t > to) break;
      if (prev > -Infinity) gap = Math.max(gap, t - prev);
      prev = t;
    }
    return gap;
  };
  const bytesAt = (t: number) => {
    let b = 0;
    for (const [pt, pb] of rx.progress) {
      if (pt > t) break;
      b = pb;
    }
    return b;
  };
  const ok = rx.fin && intact(rx, data);
  let correct = 0;
  if (!ok) {
    // count the matching prefix
    let off = 0;
    outer: for (const c of rx.got) {
      for (let i = 0; i < c.length; i++) {
        if (off + i >= data.length || c[i] !== data[off + i]) break outer;
        correct++;
      }
      off += c.length;
    }
  } else correct = data.length;
  const t0 = Math.max(0, switchAtMs - 1000);
  const afterFrom = switchAtMs + 1000;
  const afterTo = Math.min(afterFrom + 1000, rx.progress[rx.progress.length - 1]?.[0] ?? afterFrom);
  return {
    bytes: rx.bytes,
    switchAtMs,
    bytesLost: data.length - correct,
    bytesDuplicated: Math.max(0, rx.bytes - data.length),
    stallMs: maxGap(switchAtMs, switchAtMs + 1000),
    baselineGapMs: maxGap(t0, switchAtMs),
    beforeMbps: ((bytesAt(switchAtMs) - bytesAt(t0)) * 8) / ((switchAtMs - t0) * 1000),
    afterMbps: afterTo > afterFrom ? ((bytesAt(afterTo) - bytesAt(afterFrom)) * 8) / ((afterTo - afterFrom) * 1000) : NaN,
    intact: ok,
  };
}
