// CPU micro-benchmark of the transport core: two Connections in one process hand their
// datagrams straight to each other (no sockets, no crypto), so what is measured is the
// transport's own cost: CPU time per packet and per message, datagrams per message (how
// many standalone ACKs), and bytes allocated per packet (V8 heap + ArrayBuffer memory,
// summed over garbage collections with v8.GCProfiler).
//
// Workloads: (1) bulk: one stream, 32 MB a → b; (2) ping-pong: 100-byte request/response
// and 3000-byte
// rounds on one stream with think time between rounds (the MPC pattern); (3) codec: encode + parse a 1100-byte STREAM
// packet. The clock is virtual (advanced a fixed step per exchange) so pacing and timers
// behave the same on every machine; only wall time is real.
//
// Usage: node dist/bench/transport-cpu.js [--rounds N] [--gap MS] [--mb N] [--pmtu N] [--json]
//   --pmtu N: tell both connections the path carries N-byte packets (DPLPMTUD), if supported
import * as v8 from 'node:v8';
import { Connection, encodePacket, parsePacket } from '../src/transport/index.js';

const argv = process.argv.slice(2);
const arg = (name: string, dflt: number): number => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const ROUNDS = arg('rounds', 20_000);
/** application think time between ping-pong rounds, ms (longer than max_ack_delay: MPC) */
const GAP_MS = arg('gap', 5);
const MB = arg('mb', 32);
const PMTU = arg('pmtu', 0);
const STEP_MS = 0.05;

interface Measured {
  wallMs: number;
  allocatedBytes: number;
}

/** runs fn, returning wall time and the bytes allocated meanwhile (heap + external) */
function measure(fn: () => void): Measured {
  const used = () => {
    const h = v8.getHeapStatistics();
    return h.used_heap_size + h.external_memory;
  };
  const prof = new v8.GCProfiler();
  const start = used();
  prof.start();
  const t0 = performance.now();
  fn();
  const wallMs = performance.now() - t0;
  const end = used();
  const stats = prof.stop()?.statistics ?? [];
  let allocated = 0;
  let prevAfter = start;
  const total = (s: { heapStatistics: { usedHeapSize: number; externalMemory: number } }) =>
    s.heapStatistics.usedHeapSize + s.heapStatistics.externalMemory;
  for (const gc of stats) {
    allocated += Math.max(0, total(gc.beforeGC) - prevAfter);
    prevAfter = total(gc.afterGC);
  }
  allocated += Math.max(0, end - prevAfter);
  return { wallMs, allocatedBytes: allocated };
}

function pair(): { a: Connection; b: Connection } {
  const a = new Connection({ side: 0, epoch: 0x0a0a0a0a }, 0);
  const b = new Connection({ side: 1, epoch: 0x0b0b0b0b }, 0);
  for (const c of [a, b]) {
    const set = (c as unknown as { setPathMaxPacketSize?: (n: number) => void }).setPathMaxPacketSize;
    if (PMTU > 0 && set) set.call(c, PMTU);
  }
  return { a, b };
}

/**
 * Delivers datagrams one at a time, the receiver polling after each (as the Node driver
 * does per received datagram), until neither side has anything to send; returns how many
 * moved. `count` accumulates datagrams and bytes.
 */
function exchange(a: Connection, b: Connection, now: number, count: { datagrams: number; bytes: number }): number {
  const toB: Uint8Array[] = [...a.poll(now)];
  const toA: Uint8Array[] = [...b.poll(now)];
  let moved = 0;
  while (toA.length > 0 || toB.length > 0) {
    const pb = toB.shift();
    if (pb) {
      b.receive(pb, now);
      for (const p of b.poll(now)) toA.push(p);
      count.datagrams++;
      count.bytes += pb.length;
      moved++;
    }
    const pa = toA.shift();
    if (pa) {
      a.receive(pa, now);
      for (const p of a.poll(now)) toB.push(p);
      count.datagrams++;
      count.bytes += pa.length;
      moved++;
    }
  }
  return moved;
}

function bulk(): Record<string, number> {
  const { a, b } = pair();
  const total = MB * 1024 * 1024;
  const chunk = new Uint8Array(64 * 1024).fill(7);
  const count = { datagrams: 0, bytes: 0 };
  let now = 0;
  let got = 0;
  let written = 0;
  const id = a.openStream(new Uint8Array([1]));
  const m = measure(() => {
    while (got < total) {
      while (written < total) {
        const n = a.write(id, chunk.subarray(0, Math.min(chunk.length, total - written)));
        if (n === 0) break;
        written += n;
      }
      exchange(a, b, now, count);
      for (const e of b.pollEvents()) {
        if (e.type !== 'open' && e.type !== 'readable') continue;
        let c;
        while ((c = b.read(e.id))) got += c.length;
      }
      a.pollEvents();
      now += STEP_MS;
    }
  });
  const sent = a.stats().packetsSent;
  return {
    mbitPerCpuSecond: (total * 8) / (m.wallMs * 1000),
    packetsPerSecond: ((sent + b.stats().packetsSent) * 1000) / m.wallMs,
    dataPackets: sent,
    ackPackets: b.stats().packetsSent,
    bytesPerDataPacket: total / sent,
    allocatedBytesPerPacket: m.allocatedBytes / (sent + b.stats().packetsSent),
  };
}

function pingPong(size: number): Record<string, number> {
  const { a, b } = pair();
  const msg = new Uint8Array(size).fill(3);
  const count = { datagrams: 0, bytes: 0 };
  let now = 0;
  const id = a.openStream(new Uint8Array([2]));
  let rounds = 0;
  const m = measure(() => {
    while (rounds < ROUNDS) {
      a.write(id, msg);
      // until b has the request
      let atB = 0;
      let peerId = -1;
      for (let guard = 0; atB < msg.length && guard < 1000; guard++) {
        exchange(a, b, now, count);
        for (const e of b.pollEvents()) if (e.type === 'open' || e.type === 'readable') peerId = e.id;
        let c;
        while (peerId >= 0 && (c = b.read(peerId))) atB += c.length;
        now += STEP_MS;
      }
      b.write(peerId, msg);
      let atA = 0;
      for (let guard = 0; atA < msg.length && guard < 1000; guard++) {
        exchange(a, b, now, count);
        a.pollEvents();
        let c;
        while ((c = a.read(id))) atA += c.length;
        now += STEP_MS;
      }
      rounds++;
      // the application "computes" between rounds (MPC), while delayed ACKs and timers run
      const until = now + GAP_MS;
      while (now < until) {
        exchange(a, b, now, count);
        now += STEP_MS * 4;
      }
      b.pollEvents();
    }
  });
  return {
    cpuUsPerRound: (m.wallMs * 1000) / rounds,
    datagramsPerRound: count.datagrams / rounds,
    allocatedBytesPerRound: m.allocatedBytes / rounds,
    allocatedBytesPerPacket: m.allocatedBytes / count.datagrams,
  };
}

function codec(): Record<string, number> {
  const data = new Uint8Array(1100).fill(9);
  const n = 200_000;
  let ok = 0;
  const m = measure(() => {
    for (let i = 0; i < n; i++) {
      const p = encodePacket({ srcEpoch: 5, dstEpoch: 6, pn: i }, [{ type: 'stream', id: 4, offset: i * 1100, fin: false, data }]);
      if (typeof parsePacket(p) !== 'string') ok++;
    }
  });
  if (ok !== n) throw new Error('codec round trip failed');
  return { packetsPerSecond: (n * 1000) / m.wallMs, allocatedBytesPerPacket: m.allocatedBytes / n };
}

const out = { bulk: bulk(), pingPong100: pingPong(100), pingPong3000: pingPong(3000), codec: codec() };
if (argv.includes('--json')) console.log(JSON.stringify(out));
else {
  for (const [name, r] of Object.entries(out)) {
    console.log(`${name}: ${Object.entries(r).map(([k, v]) => `${k}=${v < 10 ? v.toFixed(2) : Math.round(v)}`).join(' ')}`);
  }
}
