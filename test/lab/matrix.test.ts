// The NAT matrix of DESIGN.md §4 on real kernel NATs: per row, a relay on the
// "Internet", two or three agents (`mpyc-agent up`) behind the row's routers, MPyC-like
// parties checking every byte, and every pair's final path read from
// `mpyc-agent status --json`. Records time to first byte and time to direct.
import { afterAll, describe, expect, it } from 'vitest';
import { Lab } from '../../src/lab/lab.js';
import { MpycLab } from '../../src/lab/mpyc-lab.js';
import type { LabSpec } from '../../src/lab/spec.js';
import { writeResults, type ResultRow } from '../../src/lab/results.js';
import type { AgentStatus, PeerStatus } from '../../src/agent/types.js';
import { DIST, labRequired, labSkipReason, sleep, waitUntil } from './helpers.js';
import { join } from 'node:path';

const skip = labSkipReason([join(DIST, 'src', 'agent', 'cli.js'), join(DIST, 'scripts', 'mpyc-sim.js')]);
if (skip !== undefined && labRequired()) {
  describe('NAT lab required here (CI as root or LAB_REQUIRED=1)', () => { it('can run', () => { expect.fail(`the lab cannot run: ${skip}`); }); });
}

type Expect = { kind: 'direct'; lan: boolean } | { kind: 'relay'; transport: 'udp' | 'ws' };

interface Row {
  title: string;
  expected: string;
  spec: LabSpec;
  /** node of each party; the relay is always node 'relay' on the Internet */
  parties: string[];
  /** what party i should end on for peer j */
  expect(i: number, j: number): Expect;
  /** a target on time to direct (DESIGN.md §5), asserted */
  maxTimeToDirectMs?: number;
}

const relayHost = { name: 'relay', attach: 'internet' };
const DIRECT: Expect = { kind: 'direct', lan: false };
const RELAY_UDP: Expect = { kind: 'relay', transport: 'udp' };

const ROWS: Row[] = [
  {
    title: 'no NAT ↔ EIM NAT', expected: 'direct',
    spec: { routers: [{ name: 'rb', nat: 'eim' }], hosts: [relayHost, { name: 'a', attach: 'internet' }, { name: 'b', attach: 'rb' }] },
    parties: ['a', 'b'], expect: () => DIRECT,
  },
  {
    title: 'EIM NAT ↔ EIM NAT (3 parties, 3 home routers)', expected: 'direct, within 2 s',
    spec: { routers: [{ name: 'ra', nat: 'eim' }, { name: 'rb', nat: 'eim' }, { name: 'rc', nat: 'eim' }],
      hosts: [relayHost, { name: 'a', attach: 'ra' }, { name: 'b', attach: 'rb' }, { name: 'c', attach: 'rc' }] },
    parties: ['a', 'b', 'c'], expect: () => DIRECT,
    // DESIGN.md §5: "direct path established within 2 s in the lab's EIM↔EIM case"
    maxTimeToDirectMs: 2000,
  },
  {
    title: 'same LAN behind one NAT (+ a third party behind another EIM NAT)', expected: 'direct (LAN address) on the LAN pair, direct to the third',
    spec: { routers: [{ name: 'ra', nat: 'eim' }, { name: 'rc', nat: 'eim' }],
      hosts: [relayHost, { name: 'a', attach: 'ra' }, { name: 'b', attach: 'ra' }, { name: 'c', attach: 'rc' }] },
    parties: ['a', 'b', 'c'], expect: (i, j) => (i < 2 && j < 2 ? { kind: 'direct', lan: true } : DIRECT),
  },
  {
    title: 'EIM NAT ↔ EIM NAT over a slow lossy Internet (10 ms ±2 ms and 1 % loss on each WAN and on the relay)', expected: 'direct',
    spec: { routers: [{ name: 'ra', nat: 'eim', wan: { delayMs: 10, jitterMs: 2, lossPct: 1 } }, { name: 'rb', nat: 'eim', wan: { delayMs: 10, jitterMs: 2, lossPct: 1 } }],
      hosts: [{ ...relayHost, link: { delayMs: 10, jitterMs: 2, lossPct: 1 } }, { name: 'a', attach: 'ra' }, { name: 'b', attach: 'rb' }] },
    parties: ['a', 'b'], expect: () => DIRECT,
  },
  {
    title: 'EIM NAT ↔ symmetric NAT', expected: 'relay',
    spec: { routers: [{ name: 'ra', nat: 'eim' }, { name: 'rs', nat: 'symmetric' }], hosts: [relayHost, { name: 'a', attach: 'ra' }, { name: 's', attach: 'rs' }] },
    parties: ['a', 's'], expect: () => RELAY_UDP,
  },
  {
    title: 'symmetric NAT ↔ symmetric NAT', expected: 'relay',
    spec: { routers: [{ name: 'rs', nat: 'symmetric' }, { name: 'rt', nat: 'symmetric' }], hosts: [relayHost, { name: 's', attach: 'rs' }, { name: 't', attach: 'rt' }] },
    parties: ['s', 't'], expect: () => RELAY_UDP,
  },
  {
    title: 'UDP blocked (TCP only) ↔ EIM NAT ×2', expected: 'relay over WebSocket for the blocked party; direct between the others',
    spec: { routers: [{ name: 'ru', nat: 'udp-blocked' }, { name: 'ra', nat: 'eim' }, { name: 'rb', nat: 'eim' }],
      hosts: [relayHost, { name: 'u', attach: 'ru' }, { name: 'a', attach: 'ra' }, { name: 'b', attach: 'rb' }] },
    parties: ['u', 'a', 'b'],
    expect: (i, j) => (i === 0 ? { kind: 'relay', transport: 'ws' } : j === 0 ? RELAY_UDP : DIRECT),
  },
  {
    title: 'EIM behind CGNAT (double NAT) ↔ EIM NAT', expected: 'direct',
    spec: { routers: [{ name: 'cg', nat: 'eim' }, { name: 'rc', nat: 'eim', upstream: 'cg' }, { name: 'rb', nat: 'eim' }],
      hosts: [relayHost, { name: 'c', attach: 'rc' }, { name: 'b', attach: 'rb' }] },
    parties: ['c', 'b'], expect: () => DIRECT,
  },
];

function matches(p: PeerStatus, e: Expect): boolean {
  if (e.kind === 'direct') return p.state === 'direct' && p.path?.kind === 'direct' && p.path.lan === e.lan;
  return p.state === 'relay' && p.path?.kind === 'relay' && p.path.transport === e.transport;
}

function describePeer(p: PeerStatus | undefined): string {
  if (!p || !p.path) return p?.state ?? 'unknown';
  return p.path.kind === 'direct' ? `direct${p.path.lan ? ' (LAN)' : ''}` : `relay/${p.path.transport}`;
}

const results: ResultRow[] = [];

describe.skipIf(skip !== undefined)('NAT matrix (DESIGN.md §4)', () => {
  afterAll(() => { if (results.length > 0) writeResults('matrix', results); });

  for (const row of ROWS) {
    it(`${row.title}: ${row.expected}`, async () => {
      const lab = await Lab.create(row.spec);
      const rec: ResultRow = { section: 'matrix', row: row.title, expected: row.expected, observed: 'not reached', pass: false };
      results.push(rec);
      try {
        const ml = MpycLab.create(lab, { relays: ['relay'], parties: row.parties.map((node) => ({ node })) });
        await ml.startRelay(0);
        const m = row.parties.length;
        const t0 = Date.now();
        for (let i = 0; i < m; i++) ml.startAgent(i);
        const simStart = Date.now();
        const stats = await ml.runSims({ rounds: 20, bulk: 256 * 1024, timeoutSec: 40 });
        for (const s of stats) {
          expect(s.messagesVerified).toBeGreaterThan(0);
          expect(s.unidentifiedConnections).toBe(0);
        }
        rec.firstByteMs = simStart - t0 + Math.max(...stats.map((s) => s.firstByteMs ?? Infinity));

        const pairs: [number, number][] = [];
        for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) if (i !== j) pairs.push([i, j]);
        const statuses: AgentStatus[] = [];
        const allMatch = (): boolean => {
          for (let i = 0; i < m; i++) { const s = ml.tryStatus(i); if (!s) return false; statuses[i] = s; }
          return pairs.every(([i, j]) => matches(statuses[i]!.peers.find((p) => p.index === j)!, row.expect(i, j)));
        };
        const anyRelayExpected = pairs.some(([i, j]) => row.expect(i, j).kind === 'relay');
        let ok = await waitUntil(() => allMatch() || undefined, 10_000, 'expected paths', 250).then(() => true, () => false);
        // a relay pair must also stay on the relay while the agents keep probing
        if (ok && anyRelayExpected) { await sleep(3000); ok = allMatch(); }
        const observed = new Map<string, string>();
        for (const [i, j] of pairs) if (i < j) {
          const a = describePeer(statuses[i]?.peers.find((p) => p.index === j));
          const b = describePeer(statuses[j]?.peers.find((p) => p.index === i));
          observed.set(`${i}↔${j}`, a === b ? a : `${a} / ${b}`);
        }
        rec.observed = [...observed].map(([k, v]) => `${k} ${v}`).join(', ');

        // a pair is direct when both sides switched; counted from the later agent's start
        const directTimes: number[] = [];
        const firstDirect = (i: number, j: number): number | undefined => ml.pathEvents(i).find((e) => e.peer === j && e.to.startsWith('direct'))?.time;
        for (const [i, j] of pairs) {
          const ev = ml.pathEvents(i).filter((e) => e.peer === j);
          if (row.expect(i, j).kind === 'direct') {
            const a = firstDirect(i, j); const b = firstDirect(j, i);
            const up = Math.max(ml.agentStartedAt(i) ?? t0, ml.agentStartedAt(j) ?? t0);
            if (a !== undefined && b !== undefined) directTimes.push(Math.max(a, b) - up);
          } else {
            // never switched to a direct path it cannot keep
            expect(ev.filter((e) => e.to.startsWith('direct')), `party ${i} → ${j} path events`).toEqual([]);
          }
        }
        if (directTimes.length > 0) rec.timeToDirectMs = Math.max(...directTimes);
        const directPairs = pairs.filter(([i, j]) => row.expect(i, j).kind === 'direct').length;
        // every direct pair is counted once per side: all of them must have both events
        const timely = row.maxTimeToDirectMs === undefined || (directTimes.length === directPairs && rec.timeToDirectMs! <= row.maxTimeToDirectMs);
        rec.pass = ok && timely;
        if (row.maxTimeToDirectMs !== undefined) {
          expect(directTimes, 'every direct pair logged its switch on both sides').toHaveLength(directPairs);
          expect(rec.timeToDirectMs!, `time to direct; logs in ${lab.logDir}`).toBeLessThanOrEqual(row.maxTimeToDirectMs);
        }
        expect(ok, `paths: ${rec.observed}; logs in ${lab.logDir}`).toBe(true);
      } finally {
        await lab.teardown();
      }
    }, 90_000);
  }
});
