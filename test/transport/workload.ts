// A general workload runner for the property tests: streams opened by either side, both
// directions written at scripted virtual times in random chunk sizes, optional half-close
// per direction, over two independently impaired links, with optional blackhole and path
// switch. Checks every Connection's invariants after every poll and records what each
// side read, so the tests can compare it byte for byte with what was written.
import { SimPair } from '../../src/sim/harness.js';
import type { LinkConfig } from '../../src/sim/network.js';
import type { Connection } from '../../src/transport/connection.js';
import type { TransportEvent } from '../../src/transport/types.js';

export interface DirectionPlan {
  /** writes: at virtual time `at` (ms) queue `size` bytes */
  writes: Array<{ at: number; size: number }>;
  /** half-close this direction after the last write */
  fin: boolean;
}

export interface StreamPlan {
  opener: 'a' | 'b';
  openAt: number;
  /** opener → acceptor */
  fwd: DirectionPlan;
  /** acceptor → opener (queued from the time given, sent once the acceptor knows the stream) */
  back: DirectionPlan;
}

export interface Impairments {
  ab: LinkConfig;
  ba: LinkConfig;
  /** both directions drop everything in [from, from + lengthMs) */
  blackhole?: { from: number; lengthMs: number };
  /** both links replaced at `at` by links with these one-way delays (same other impairments) */
  pathSwitch?: { at: number; abDelayMs: number; baDelayMs: number };
}

interface Dir {
  /** bytes this direction must carry */
  data: Uint8Array;
  /** bytes queued so far (time-released) and accepted by write() so far */
  released: number;
  written: number;
  finPlanned: boolean;
  finCalled: boolean;
  received: Uint8Array[];
  receivedBytes: number;
  finReceived: boolean;
}

interface StreamRun {
  plan: StreamPlan;
  key: string;
  /** stream id (the same on both sides once known) */
  id: number;
  fwd: Dir;
  back: Dir;
  acceptorKnows: boolean;
}

export interface WorkloadResult {
  sim: SimPair;
  complete: boolean;
  end: number;
  /** first invariant violation or unexpected event, if any */
  problem: string | null;
  mismatches: string[];
  stats: { a: ReturnType<Connection['stats']>; b: ReturnType<Connection['stats']> };
}

/** deterministic pattern bytes so a mismatch is visible and positions are distinguishable */
function pattern(seed: number, n: number): Uint8Array {
  const d = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    d[i] = x & 0xff;
  }
  return d;
}

function newDir(seed: number, p: DirectionPlan): Dir {
  const total = p.writes.reduce((s, w) => s + w.size, 0);
  return { data: pattern(seed, total), released: 0, written: 0, finPlanned: p.fin, finCalled: false, received: [], receivedBytes: 0, finReceived: false };
}

export function runWorkload(seed: number, imp: Impairments, plans: StreamPlan[], opts: { keepTrace?: boolean; limitMs?: number } = {}): WorkloadResult {
  const sim = new SimPair(seed, { ab: imp.ab, ba: imp.ba });
  sim.keepTrace = opts.keepTrace ?? false;
  let problem: string | null = null;
  sim.checkInvariant = (c) => {
    if (problem) return;
    const bad = c.checkInvariants();
    if (bad) problem = `invariant (${c === sim.a.conn ? 'a' : 'b'}): ${bad}`;
    // poll() sent all it could: a deadline not after now asks for a poll that can do
    // nothing more, i.e. a busy loop (a real driver's timer would fire back to back)
    else if (!c.closed && c.nextDeadline() <= sim.now) problem = `busy loop (${c === sim.a.conn ? 'a' : 'b'}): deadline ${c.nextDeadline()} ≤ now ${sim.now} right after poll`;
  };
  const runs: StreamRun[] = [];
  const byId = { a: new Map<number, StreamRun>(), b: new Map<number, StreamRun>() };
  const conn = (side: 'a' | 'b') => (side === 'a' ? sim.a.conn : sim.b.conn);
  const other = (side: 'a' | 'b'): 'a' | 'b' => (side === 'a' ? 'b' : 'a');

  // push released bytes of one direction into its sender; FIN after the last planned byte
  const pump = (r: StreamRun, dir: Dir, side: 'a' | 'b') => {
    const c = conn(side);
    while (dir.written < dir.released) {
      const n = c.write(r.id, dir.data.subarray(dir.written, dir.released));
      if (n === 0) break;
      dir.written += n;
    }
    if (dir.finPlanned && !dir.finCalled && dir.written === dir.data.length && dir.released === dir.data.length) {
      c.finish(r.id);
      dir.finCalled = true;
    }
  };
  const pumpSide = (side: 'a' | 'b', id: number) => {
    const r = byId[side].get(id);
    if (!r) return;
    if (r.plan.opener === side) pump(r, r.fwd, side);
    else if (r.acceptorKnows) pump(r, r.back, side);
  };

  const onEvents = (side: 'a' | 'b') => (evs: TransportEvent[]) => {
    const c = conn(side);
    for (const e of evs) {
      if (e.type === 'connectionClosed' || e.type === 'reset' || e.type === 'peerRestarted') {
        problem ??= `unexpected event at ${side}: ${JSON.stringify(e)}`;
        continue;
      }
      if (e.type === 'open') {
        const key = new TextDecoder().decode(e.target);
        const r = runs.find((x) => x.key === key);
        if (!r || r.plan.opener === side) {
          problem ??= `open for unknown target ${key}`;
          continue;
        }
        if (r.id !== e.id) problem ??= `stream id mismatch ${r.id} vs ${e.id}`;
        r.acceptorKnows = true;
        byId[side].set(e.id, r);
        pump(r, r.back, side);
      }
      if (e.type === 'open' || e.type === 'readable' || e.type === 'fin') {
        const r = byId[side].get(e.id);
        if (!r) continue;
        const dir = r.plan.opener === side ? r.back : r.fwd;
        let chunk: Uint8Array | null;
        while ((chunk = c.read(e.id))) {
          dir.received.push(chunk.slice());
          dir.receivedBytes += chunk.length;
        }
        if (e.type === 'fin') dir.finReceived = true;
      }
      if (e.type === 'writable') pumpSide(side, e.id);
    }
  };
  sim.a.onEvents = onEvents('a');
  sim.b.onEvents = onEvents('b');

  plans.forEach((plan, i) => {
    const key = `s${i}`;
    const r: StreamRun = { plan, key, id: -1, fwd: newDir(seed * 31 + i * 2 + 1, plan.fwd), back: newDir(seed * 31 + i * 2 + 2, plan.back), acceptorKnows: false };
    runs.push(r);
    sim.at(plan.openAt, () => {
      r.id = conn(plan.opener).openStream(new TextEncoder().encode(key));
      byId[plan.opener].set(r.id, r);
      pump(r, r.fwd, plan.opener);
    });
    const release = (dir: Dir, p: DirectionPlan, side: () => 'a' | 'b', startAt: number) => {
      let acc = 0;
      for (const w of p.writes) {
        acc += w.size;
        const upTo = acc;
        sim.at(Math.max(startAt, w.at), () => {
          dir.released = Math.max(dir.released, upTo);
          if (r.id >= 0) pumpSide(side(), r.id);
        });
      }
      if (p.writes.length === 0 && p.fin) sim.at(startAt, () => r.id >= 0 && pumpSide(side(), r.id));
    };
    release(r.fwd, plan.fwd, () => plan.opener, plan.openAt);
    release(r.back, plan.back, () => other(plan.opener), plan.openAt);
  });

  if (imp.blackhole) {
    const { from, lengthMs } = imp.blackhole;
    sim.ab.blackhole(from, from + lengthMs);
    sim.ba.blackhole(from, from + lengthMs);
  }
  if (imp.pathSwitch) {
    const ps = imp.pathSwitch;
    sim.switchPath(ps.at, { ab: { ...imp.ab, delayMs: ps.abDelayMs }, ba: { ...imp.ba, delayMs: ps.baDelayMs } });
    // a blackhole belongs to the Link objects the switch replaces: the new links go dark for
    // what is left of it too (queued after the switch, which runs first at the same time)
    const bh = imp.blackhole;
    if (bh && ps.at < bh.from + bh.lengthMs) {
      const t = Math.max(ps.at, bh.from);
      sim.q.push(t, () => {
        sim.ab.blackhole(t, bh.from + bh.lengthMs);
        sim.ba.blackhole(t, bh.from + bh.lengthMs);
      });
    }
  }

  const dirDone = (d: Dir) => d.receivedBytes === d.data.length && (!d.finPlanned || d.finReceived);
  const complete = () => runs.every((r) => r.id >= 0 && dirDone(r.fwd) && dirDone(r.back));
  const end = sim.run(opts.limitMs ?? 120_000, () => complete() || problem !== null);

  const mismatches: string[] = [];
  for (const r of runs) {
    for (const [name, d] of [['fwd', r.fwd], ['back', r.back]] as const) {
      const got = Buffer.concat(d.received);
      if (!got.equals(Buffer.from(d.data))) mismatches.push(`${r.key}.${name}: got ${got.length} of ${d.data.length} bytes${got.length === d.data.length ? ' (content differs)' : ''}`);
      if (d.finReceived && !d.finPlanned) mismatches.push(`${r.key}.${name}: FIN received but never sent`);
    }
  }
  return { sim, complete: complete(), end, problem, mismatches, stats: { a: sim.a.conn.stats(), b: sim.b.conn.stats() } };
}
