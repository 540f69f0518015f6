// One lab row with the real agent: a relay on the "Internet", two or three agents
// (`mpyc-agent up`) behind the row's routers, MPyC-like parties checking every byte, and
// every pair's final path read from `mpyc-agent status --json`. Used by matrix.test.ts and
// kinds.test.ts (rowTests); reach-rows.ts describes rows for features still being built
// in the same shape. Records time to first byte and time to direct in a ResultRow.
import { afterAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { Lab } from '../../src/lab/lab.js';
import { MpycLab } from '../../src/lab/mpyc-lab.js';
import type { LabSpec } from '../../src/lab/spec.js';
import { writeResults, type ResultRow } from '../../src/lab/results.js';
import type { AgentStatus, PeerStatus } from '../../src/agent/types.js';
import { DIST, labRequired, labSkipReason, sleep, waitUntil } from './helpers.js';

/** The path party i must end on towards party j. A direct path may also be pinned to an
 * address family and to a host (e.g. a NAT's public address: a hairpinned path). */
export type Expect = { kind: 'direct'; lan: boolean; family?: 4 | 6; host?: string } | { kind: 'relay'; transport: 'udp' | 'ws' };

export interface Row {
  title: string;
  expected: string;
  spec: LabSpec;
  /** node of each party */
  parties: string[];
  /** nodes running a relay, the home relay first (default: the node 'relay') */
  relays?: string[];
  /** the relays' address family in the session file (default 4) */
  relayFamily?: 4 | 6;
  /** extra `mpyc-relay serve` arguments for every relay */
  relayArgs?: string[];
  /** what party i should end on for peer j (the lab gives addresses) */
  expect(i: number, j: number, lab: Lab): Expect;
  /** a target on time to direct (DESIGN.md §5), asserted */
  maxTimeToDirectMs?: number;
  /**
   * After the first run and the expected paths: this long with no MPyC traffic (the
   * agents keep running), then a second run. No pair may change its path meanwhile.
   */
  idleMs?: number;
  /** extra notes for the results table, read from the lab at the end of a row that went
   * as expected (after the idle period and second run, if any); may assert */
  evidence?(lab: Lab, ml: MpycLab): string;
}

export const relayHost = { name: 'relay', attach: 'internet' };
export const DIRECT: Expect = { kind: 'direct', lan: false };
export const RELAY_UDP: Expect = { kind: 'relay', transport: 'udp' };

/** 4 or 6, from the text of a direct path's address ("1.2.3.4:5" or "[2001:db8::1]:5"). */
export function addressFamily(address: string): 4 | 6 {
  return address.startsWith('[') || (address.match(/:/g) ?? []).length > 1 ? 6 : 4;
}

/** The host part of a direct path's address. */
export function addressHost(address: string): string {
  return address.startsWith('[') ? address.slice(1, address.indexOf(']')) : address.slice(0, address.lastIndexOf(':'));
}

function matches(p: PeerStatus | undefined, e: Expect): boolean {
  if (!p) return false;
  if (e.kind === 'direct') {
    return p.state === 'direct' && p.path?.kind === 'direct' && p.path.lan === e.lan
      && (e.family === undefined || addressFamily(p.path.address) === e.family)
      && (e.host === undefined || addressHost(p.path.address) === e.host);
  }
  return p.state === 'relay' && p.path?.kind === 'relay' && p.path.transport === e.transport;
}

function describePeer(p: PeerStatus | undefined): string {
  if (!p || !p.path) return p?.state ?? 'unknown';
  return p.path.kind === 'direct' ? `direct${p.path.lan ? ' (LAN)' : ''}${addressFamily(p.path.address) === 6 ? ' IPv6' : ''}` : `relay/${p.path.transport}`;
}

/** Run one row, filling `rec`; throws (an assertion) if the row is not as expected. */
export async function runRow(row: Row, rec: ResultRow): Promise<void> {
  const lab = await Lab.create(row.spec);
  try {
    const ml = MpycLab.create(lab, { relays: row.relays ?? ['relay'], relayFamily: row.relayFamily, relayArgs: row.relayArgs, parties: row.parties.map((node) => ({ node })) });
    for (let r = 0; r < ml.relays.length; r++) await ml.startRelay(r);
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
      return pairs.every(([i, j]) => matches(statuses[i]!.peers.find((p) => p.index === j), row.expect(i, j, lab)));
    };
    const observe = (): string => {
      const observed = new Map<string, string>();
      for (const [i, j] of pairs) if (i < j) {
        const a = describePeer(statuses[i]?.peers.find((p) => p.index === j));
        const b = describePeer(statuses[j]?.peers.find((p) => p.index === i));
        observed.set(`${i}↔${j}`, a === b ? a : `${a} / ${b}`);
      }
      return [...observed].map(([k, v]) => `${k} ${v}`).join(', ');
    };
    const anyRelayExpected = pairs.some(([i, j]) => row.expect(i, j, lab).kind === 'relay');
    let ok = await waitUntil(() => allMatch() || undefined, 10_000, 'expected paths', 250).then(() => true, () => false);
    // a relay pair must also stay on the relay while the agents keep probing
    if (ok && anyRelayExpected) { await sleep(3000); ok = allMatch(); }
    rec.observed = observe();
    const notes: string[] = [];

    if (ok && row.idleMs !== undefined) {
      const changesBefore = ml.parties.map((p) => ml.pathEvents(p.index).length);
      await sleep(row.idleMs);
      const idleChanges = ml.parties.flatMap((p) => ml.pathEvents(p.index).slice(changesBefore[p.index]));
      const again = await ml.runSims({ rounds: 20, bulk: 256 * 1024, timeoutSec: 40, seed: 'after-idle' });
      for (const s of again) expect(s.messagesVerified).toBeGreaterThan(0);
      const stillOk = allMatch();
      notes.push(`after ${Math.round(row.idleMs / 1000)} s idle: ${idleChanges.length} path changes${idleChanges.map((e) => ` (${e.from}→${e.to}: ${e.reason})`).join('')}; second run verified; ${observe()}`);
      ok = stillOk && idleChanges.length === 0;
    }
    if (ok && row.evidence) notes.push(row.evidence(lab, ml));

    // a pair is direct when both sides switched; counted from the later agent's start
    const directTimes: number[] = [];
    const firstDirect = (i: number, j: number): number | undefined => ml.pathEvents(i).find((e) => e.peer === j && e.to.startsWith('direct'))?.time;
    const directPairList = pairs.filter(([i, j]) => row.expect(i, j, lab).kind === 'direct');
    // the agents log asynchronously: status may show a direct path before its log line is in
    if (ok) await waitUntil(() => directPairList.every(([i, j]) => firstDirect(i, j) !== undefined) || undefined, 3000, 'path change lines', 100).catch(() => undefined);
    for (const [i, j] of pairs) {
      const ev = ml.pathEvents(i).filter((e) => e.peer === j);
      if (row.expect(i, j, lab).kind === 'direct') {
        const a = firstDirect(i, j); const b = firstDirect(j, i);
        const up = Math.max(ml.agentStartedAt(i) ?? t0, ml.agentStartedAt(j) ?? t0);
        if (a !== undefined && b !== undefined) directTimes.push(Math.max(a, b) - up);
      } else {
        // never switched to a direct path it cannot keep
        expect(ev.filter((e) => e.to.startsWith('direct')), `party ${i} → ${j} path events`).toEqual([]);
      }
    }
    if (directTimes.length > 0) rec.timeToDirectMs = Math.max(...directTimes);
    rec.notes = notes.join('; ');
    const directPairs = directPairList.length;
    // every direct pair is counted once per side: all of them must have both events
    const timely = row.maxTimeToDirectMs === undefined || (directTimes.length === directPairs && rec.timeToDirectMs! <= row.maxTimeToDirectMs);
    rec.pass = ok && timely;
    if (row.maxTimeToDirectMs !== undefined) {
      expect(directTimes, 'every direct pair logged its switch on both sides').toHaveLength(directPairs);
      expect(rec.timeToDirectMs!, `time to direct; logs in ${lab.logDir}`).toBeLessThanOrEqual(row.maxTimeToDirectMs);
    }
    expect(ok, `paths: ${rec.observed}${rec.notes ? `; ${rec.notes}` : ''}; logs in ${lab.logDir}`).toBe(true);
  } finally {
    await lab.teardown();
  }
}

/**
 * One test per row, in a describe block that is skipped (loudly) where the lab cannot
 * run and fails where it must (CI as root); the rows' results go to the results file
 * `file` (section `section` of docs/lab-results.md).
 */
export function rowTests(o: { title: string; section: ResultRow['section']; file: string; rows: Row[]; portMapping?: boolean; timeoutMs?(row: Row): number }): void {
  const skip = labSkipReason([join(DIST, 'src', 'agent', 'cli.js'), join(DIST, 'scripts', 'mpyc-sim.js')], { portMapping: o.portMapping });
  if (skip !== undefined && labRequired()) {
    describe('NAT lab required here (CI as root or LAB_REQUIRED=1)', () => { it('can run', () => { expect.fail(`the lab cannot run: ${skip}`); }); });
  }
  const results: ResultRow[] = [];
  describe.skipIf(skip !== undefined)(o.title, () => {
    afterAll(() => { if (results.length > 0) writeResults(o.file, results); });
    for (const row of o.rows) {
      it(`${row.title}: ${row.expected}`, async () => {
        const rec: ResultRow = { section: o.section, row: row.title, expected: row.expected, observed: 'not reached', pass: false };
        results.push(rec);
        await runRow(row, rec);
      }, o.timeoutMs?.(row) ?? 90_000);
    }
  });
}
