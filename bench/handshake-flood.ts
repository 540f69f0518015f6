// Handshake flood bench (`npm run build && node dist/bench/handshake-flood.js [--quick]`):
// a responder SessionManager in this process takes a flood of initiations while a
// legitimate peer re-handshakes with it every 100 ms; reports the X25519 operations per
// second the responder spends, the handshakes per second it completes, and the
// legitimate handshakes' latency.
//
// Model: the responder reads datagrams one at a time from a receive queue of QUEUE
// datagrams (a socket buffer: arrivals beyond it are lost, as the kernel drops them);
// the attacker offers RATE datagrams per second on the wall clock; the legitimate
// initiator's datagrams enter the same queue, the responder's answers reach it at once.
// Everything runs on the real clock, so the CPU each datagram costs decides how much of
// the flood and of the legitimate traffic gets through. Floods:
//   replay   one captured initiation of the legitimate peer, sent again and again from
//            20 000 spoofed source addresses (issue #12 row 7)
//   forged   initiations with a valid mac1 (the responder's public key is public) and
//            random Noise bytes, from 20 000 spoofed sources
import { PeerKey } from '../src/common/peer-key.js';
import { dhCounter, generateKeyPair } from '../src/noise/index.js';
import { SessionManager, type SessionManagerOptions } from '../src/session/index.js';
import { computeMac, mac1Key } from '../src/session/mac.js';
import { INITIATION_LEN, MAC_LEN, MSG_INITIATION } from '../src/session/wire.js';
import { percentile } from './lib/stats.js';

const quick = process.argv.includes('--quick');
const SECONDS = quick ? 1.5 : 4;
const QUEUE = 4096;
const SOURCES = 20_000;
const LEGIT_EVERY_MS = 100;
const RATES = [5_000, 30_000];

interface Datagram { bytes: Uint8Array; from: string }

/** The receive queue: a ring of QUEUE slots (Array.shift would cost the bench O(n) per datagram). */
class Ring {
  private readonly slots: (Datagram | undefined)[] = new Array(QUEUE);
  private head = 0;
  private count = 0;
  lost = 0;
  push(d: Datagram): void {
    if (this.count === QUEUE) { this.lost++; return; }
    this.slots[(this.head + this.count++) % QUEUE] = d;
  }
  shift(): Datagram | undefined {
    if (this.count === 0) return undefined;
    const d = this.slots[this.head];
    this.slots[this.head] = undefined;
    this.head = (this.head + 1) % QUEUE;
    this.count--;
    return d;
  }
}

interface Result { dhPerS: number; handshakesPerS: number; legitOk: number; legitTried: number; latencies: number[]; lost: number; processed: number }

function run(flood: Flood, rate: number): Result {
  const ka = generateKeyPair();
  const kb = generateKeyPair();
  const aKey = PeerKey.fromBytes(ka.publicKey);
  const bKey = PeerKey.fromBytes(kb.publicKey);
  const queue = new Ring();
  const enqueue = (d: Datagram): void => queue.push(d);
  let established = 0;
  let a!: SessionManager<string>;
  const bOptions = {
    staticKey: kb, peers: [aKey],
    transmit: (_peer: PeerKey, packet: Uint8Array) => a.receive(new Uint8Array(packet), 'b'),
    deliver: () => {},
    // endpoints are "address:port" strings; cookie replies to spoofed sources go nowhere
    source: { bytesOf: (from: string) => new TextEncoder().encode(from), reply: (packet: Uint8Array, to: string) => { if (to === 'a') a.receive(new Uint8Array(packet), 'b'); } },
  };
  const b = new SessionManager<string>(bOptions as SessionManagerOptions<string>);
  a = new SessionManager<string>({
    staticKey: ka, peers: [bKey],
    transmit: (_peer, packet) => enqueue({ bytes: new Uint8Array(packet), from: 'a' }),
    deliver: () => {},
    onEvent: (e) => { if (e.type === 'established') established++; },
  });
  // the captured initiation: one of a's, delivered once, then replayed
  a.connect(bKey);
  const captured = queue.shift()!.bytes;
  b.receive(new Uint8Array(captured), 'a');
  const macKey = mac1Key(kb.publicKey);
  const forged = (): Uint8Array => {
    const raw = new Uint8Array(INITIATION_LEN);
    raw[0] = MSG_INITIATION;
    crypto.getRandomValues(raw.subarray(4, INITIATION_LEN - 2 * MAC_LEN));
    raw.set(computeMac(macKey, raw.subarray(0, INITIATION_LEN - 2 * MAC_LEN)), INITIATION_LEN - 2 * MAC_LEN);
    return raw;
  };
  // made before the clock starts: the attacker's work is not the responder's
  const pool = Array.from({ length: 4096 }, () => (flood === 'replay' ? captured : forged()));
  const sources = Array.from({ length: SOURCES }, (_, i) => `spoof:${i}`);
  const attack = (i: number): Datagram => ({ bytes: new Uint8Array(pool[i % pool.length]!), from: sources[i % SOURCES]! });

  const latencies: number[] = [];
  let legitTried = 0;
  let legitStartedAt = -1;
  let sent = 0;
  let processed = 0;
  const dh0 = dhCounter.operations;
  const hs0 = b.counters.handshakesCompleted;
  const t0 = performance.now();
  let nextLegit = t0 + 10;
  let nextTimers = t0;
  let now = t0;
  while (now - t0 < SECONDS * 1000) {
    now = performance.now();
    if (flood !== 'none') {
      const due = Math.floor(((now - t0) / 1000) * rate);
      for (; sent < due; sent++) enqueue(attack(sent));
    }
    if (legitStartedAt < 0 && now >= nextLegit) {
      legitTried++;
      legitStartedAt = performance.now();
      established = 0;
      a.connect(bKey, true);
    }
    const d = queue.shift();
    if (d) { b.receive(d.bytes, d.from); processed++; }
    if (now >= nextTimers) { // the agent runs the session timers from a timer, not per datagram
      nextTimers = now + 1;
      if (now >= a.nextDeadline()) a.tick(now);
      if (now >= b.nextDeadline()) b.tick(now);
    }
    if (legitStartedAt >= 0 && established > 0) {
      now = performance.now();
      latencies.push(now - legitStartedAt);
      legitStartedAt = -1;
      nextLegit = now + LEGIT_EVERY_MS;
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  a.close();
  b.close();
  return {
    dhPerS: (dhCounter.operations - dh0) / seconds, handshakesPerS: (b.counters.handshakesCompleted - hs0) / seconds,
    legitOk: latencies.length, legitTried, latencies, lost: queue.lost, processed,
  };
}

const fmtMs = (x: number): string => (Number.isFinite(x) ? (x < 10 ? x.toFixed(2) : x.toFixed(0)) : '–');
console.log(`# Handshake flood against one responder (${SECONDS} s each, receive queue ${QUEUE}, node ${process.version})\n`);
console.log('| flood | offered/s | datagrams processed/s | lost in the queue | X25519 ops/s | legit handshakes done/tried | legit latency p50 / p99 / max (ms) |');
console.log('|---|---:|---:|---:|---:|---:|---:|');
type Flood = 'none' | 'replay' | 'forged';
const cases: Array<[Flood, number]> = [['none', 0], ...RATES.flatMap((r): Array<[Flood, number]> => [['replay', r], ['forged', r]])];
for (const [flood, rate] of cases) {
  const r = run(flood, rate);
  const p = (q: number): string => fmtMs(percentile(r.latencies, q));
  console.log(`| ${flood} | ${rate} | ${(r.processed / SECONDS).toFixed(0)} | ${r.lost} | ${r.dhPerS.toFixed(0)} | ${r.legitOk}/${r.legitTried} | ${p(50)} / ${p(99)} / ${fmtMs(Math.max(...r.latencies))} |`);
}
