// Transport benchmark in the deterministic simulator (issue #4 item 8):
//  (a) 100-byte ping-pong at 20 ms RTT with 2 % random loss each way: p50 / p99 round time
//  (b) bulk goodput through a 100 Mbit/s, 20 ms RTT bottleneck (1-BDP drop-tail queue), no loss
//  (c) a path switch from a 40 ms relay path to a 10 ms direct path mid bulk transfer:
//      bytes lost / duplicated and the delivery stall (old path still delivering, and old
//      path dead at the switch as after a NAT rebinding)
// Virtual time, so the figures do not depend on the machine. Prints a markdown table and
// writes docs/transport-results.md.
// Usage: npm run bench:transport   (node dist/bench/transport-sim.js [--no-write])
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { bulkGoodput, pathSwitch, pingPong } from '../src/sim/measure.js';

const seeds = [1, 2, 3];
const f1 = (x: number) => x.toFixed(1);
const met = (ok: boolean) => (ok ? 'met' : '**not met**');

const wall0 = performance.now();
const pp = seeds.map((seed) => pingPong({ seed, rounds: 5000 }));
// (b) and (c) have no random impairment (their only losses are queue overflows and the
// switch), so one run each is exact; (a) is run with three seeds.
const bulk = [bulkGoodput({ bytes: 50_000_000 })];
const swAlive = [pathSwitch({ bytes: 50_000_000 })];
const swDead = [pathSwitch({ bytes: 50_000_000, oldPathDies: true })];
const wallS = (performance.now() - wall0) / 1000;

const worst = <T>(xs: T[], f: (x: T) => number, hi = true) => xs.map(f).reduce((a, b) => (hi ? Math.max(a, b) : Math.min(a, b)));
const list = <T>(xs: T[], f: (x: T) => number) => xs.map((x) => (Number.isInteger(f(x)) ? String(f(x)) : f1(f(x)))).join(' / ');

const ppP99 = worst(pp, (r) => r.p99Ms);
const bulkMin = worst(bulk, (r) => r.goodputMbps, false);
const lostAlive = worst(swAlive, (r) => r.bytesLost + r.bytesDuplicated);
const lostDead = worst(swDead, (r) => r.bytesLost + r.bytesDuplicated);
const allIntact = [...bulk, ...swAlive, ...swDead].every((r) => r.intact);

const rows: string[][] = [
  ['(a) ping-pong 100 B, 20 ms RTT, 2 % loss: p50 round', `${list(pp, (r) => r.p50Ms)} ms`, '—', '—'],
  ['(a) ping-pong 100 B, 20 ms RTT, 2 % loss: p99 round', `${list(pp, (r) => r.p99Ms)} ms`, '≤ 60 ms (3 × RTT)', met(ppP99 <= 60)],
  ['(a) ping-pong: slowest round of 5000', `${list(pp, (r) => r.maxMs)} ms`, '—', '—'],
  ['(b) bulk 50 MB through 100 Mbit/s, 20 ms RTT, no loss: goodput', `${list(bulk, (r) => r.goodputMbps)} Mbit/s`, '≥ 80 Mbit/s', met(bulkMin >= 80)],
  ['(b) same, after the first second (slow start excluded)', `${list(bulk, (r) => r.steadyMbps)} Mbit/s`, '—', '—'],
  ['(c) path switch 40 ms → 10 ms mid-transfer (old path still delivering): bytes lost + duplicated', list(swAlive, (r) => r.bytesLost + r.bytesDuplicated), '0', met(lostAlive === 0)],
  ['(c) same: stall (longest delivery gap in the second after the switch)', `${list(swAlive, (r) => r.stallMs)} ms`, '—', '—'],
  ['(c) path switch, old path dead at the switch (NAT rebinding): bytes lost + duplicated', list(swDead, (r) => r.bytesLost + r.bytesDuplicated), '0', met(lostDead === 0)],
  ['(c) same: stall', `${list(swDead, (r) => r.stallMs)} ms`, '—', '—'],
  ['(c) reference: longest delivery gap in the second before the switch (loss recovery on the 40 ms path)', `${list(swAlive, (r) => r.baselineGapMs)} ms`, '—', '—'],
  ['(c) goodput before / 1–2 s after the switch', swAlive.map((r) => `${f1(r.beforeMbps)} → ${f1(r.afterMbps)}`).join(' / ') + ' Mbit/s', '—', '—'],
];

const table = [
  '| measurement | measured (a: seeds 1 / 2 / 3) | target | status |',
  '|---|---|---|---|',
  ...rows.map((r) => `| ${r.join(' | ')} |`),
].join('\n');

console.log(table);
console.log(`\nall transfers intact (compared byte for byte): ${allIntact}; wall time ${wallS.toFixed(1)} s`);

if (!process.argv.includes('--no-write')) {
  const date = new Date().toISOString().slice(0, 10);
  const doc = `# Transport results (simulator)

Measured ${date} with \`npm run bench:transport\` (bench/transport-sim.ts, src/sim/measure.ts) in the
deterministic network simulator (virtual clock, seeded PRNG; (a) with seeds 1, 2, 3; (b) and (c) have
no random impairment, so one run each is exact), so the figures are repeatable and independent of
the machine. Issue #4, item 8.

${table}

Every transfer arrived intact, byte for byte: ${allIntact ? 'yes' : '**no**'}.

## Setups
- **(a)** one stream; a writes 100 bytes, b echoes 100 bytes as soon as they are readable, a starts
  the next round when the echo is complete; 5000 rounds. Links: 10 ms one way each direction,
  2 % independent random loss each way. A lost message is recovered by the PTO
  (srtt + 4·rttvar + 2 ms max ACK delay, no 200 ms floor), so a round with one loss takes about
  2 × RTT; TCP's minimum RTO alone is 200 ms.
- **(b)** one stream, 50 MB, a → b through a 100 Mbit/s bottleneck with a drop-tail queue of one
  bandwidth-delay product (250 kB), 10 ms one way each direction, no random loss (the only
  losses are queue overflows). Goodput = application bytes delivered / time to the FIN.
  NewReno with pacing; slow start from 10 packets is included in the first figure.
- **(c)** one stream, 50 MB; the path starts as a 40 ms RTT relay path (100 Mbit/s, 1-BDP queue)
  and switches at t = 1.5 s to a 10 ms RTT direct path. Both connections call
  \`pathChanged()\`: RTT and congestion state restart; packets in flight on the old path leave the
  congestion window but stay acknowledgeable, and are re-sent only if not acked within the old
  path's loss delay. "Old path still delivering" = relay → direct (the relay keeps forwarding
  what it has); "old path dead" = everything in flight on the old path is lost at the switch.
  Bytes lost = written bytes missing or wrong at the reader; stall = the longest gap between
  deliveries to the reading application in the second after the switch.
`;
  const out = fileURLToPath(new URL('../../docs/transport-results.md', import.meta.url));
  writeFileSync(out, doc);
  console.log(`wrote ${out}`);
}
