// Runners for the reach rows that runRow (rows.ts) does not cover by itself: the
// mechanism check (status names how every direct path was found), a relay lost by one
// party in the middle of an MPyC run (RelayLossRow), and rows run as many trials
// (TrialsRow). Used by reach.test.ts.
import { expect } from 'vitest';
import { Lab } from '../../src/lab/lab.js';
import { MpycLab } from '../../src/lab/mpyc-lab.js';
import { blackholeRuleset } from '../../src/lab/rulesets.js';
import type { ResultRow } from '../../src/lab/results.js';
import type { AgentStatus } from '../../src/agent/types.js';
import { runRow } from './rows.js';
import type { ReachRow, RelayLossRow, TrialsRow } from './reach-rows.js';
import { BUDGET, HARD_SOCKETS, type BirthdayRole } from '../../src/agent/birthday.js';
import { waitUntil } from './helpers.js';

/**
 * The row with its mechanism checked at the end (after runRow found the expected
 * paths): every direct pair's status, on both sides, names the row's mechanism.
 */
export function withMechanismCheck(row: ReachRow): ReachRow {
  if (!row.mechanism) return row;
  const mechanism = row.mechanism;
  return {
    ...row,
    evidence: (lab, ml) => {
      const seen: string[] = [];
      for (const p of ml.parties) {
        const s = ml.status(p.index);
        for (const q of s.peers) {
          if (row.expect(p.index, q.index, lab).kind !== 'direct') continue;
          expect(q.path?.kind, `party ${p.index} → ${q.index}`).toBe('direct');
          const m = q.path?.kind === 'direct' ? q.path.mechanism : undefined;
          expect(m, `mechanism party ${p.index} → ${q.index} (source ${q.path?.kind === 'direct' ? q.path.source : '-'})`).toBe(mechanism);
          seen.push(`${p.index}→${q.index} ${m}`);
        }
      }
      const more = row.evidence ? `; ${row.evidence(lab, ml)}` : '';
      return `mechanism in status: ${seen.join(', ')}${more}`;
    },
  };
}

/** Relay frames of each pair as the status shows them: `i→j relay-address`. */
function relayOf(s: AgentStatus | undefined, peer: number): string | undefined {
  const p = s?.peers.find((q) => q.index === peer);
  return p?.path?.kind === 'relay' ? p.path.relay : undefined;
}

export interface RelayMove { time: number; peer: number; toRelay: string }

/** party i's logged moves of a pair from one relay to another ('path change' relay → relay) */
export function relayMoves(ml: MpycLab, i: number): RelayMove[] {
  return (ml.parties[i]!.proc?.jsonLines() ?? [])
    .filter((j) => j.msg === 'path change' && j.from === 'relay' && j.to === 'relay')
    .map((j) => ({ time: Number(j.time), peer: Number(j.peer), toRelay: String(j.toRelay) }));
}

/**
 * One party loses one relay in the middle of an MPyC run (everything between its NAT's
 * public address and that relay dropped on the Internet router), every other party keeps
 * both. The run must complete with every byte verified; every pair of that party must
 * move to another relay on both sides within maxRehomeMs; no pair may end split
 * (each side of every pair on the same relay).
 */
export async function runRelayLossRow(row: RelayLossRow, rec: ResultRow): Promise<void> {
  await inLab(row, async (lab, ml, relays) => {
    const m = row.parties.length;
    for (let i = 0; i < m; i++) ml.startAgent(i);
    const warm = await ml.runSims({ rounds: 5, bulk: 16 * 1024, timeoutSec: 40, seed: 'warm-up' });
    rec.firstByteMs = Math.max(...warm.map((s) => s.firstByteMs ?? Infinity));
    const lost = relays[row.fault.relay]!;
    const lostAddress = lab.address(lost);
    const victim = row.fault.party;
    const peers = ml.parties.map((p) => p.index).filter((j) => j !== victim);
    // every pair of the victim on the relay that will be lost, both sides (the first relay in session order)
    await waitUntil(() => peers.every((j) => relayOf(ml.tryStatus(victim), j)?.includes(lostAddress)
      && relayOf(ml.tryStatus(j), victim)?.includes(lostAddress)) || undefined, 10_000, `party ${victim}'s pairs on ${lost}`, 250);

    // a long run of MPC rounds (then a bulk transfer), the fault while the rounds go on
    const rounds = 1500;
    const run = ml.runSims({ rounds, bulk: 1024 * 1024, timeoutSec: 90, seed: 'relay-loss' });
    let runEndedAt = Infinity;
    run.then(() => { runEndedAt = Date.now(); }, () => undefined); // awaited below
    const before = ml.status(victim).peers.map((q) => q.bytesReceived);
    await waitUntil(() => (ml.tryStatus(victim)?.peers.every((q, k) => q.bytesReceived > before[k]! + 50_000) ? true : undefined), 30_000, 'rounds flowing', 100);
    const tFault = Date.now();
    lab.nft('internet', blackholeRuleset('lab_relay_loss', lab.publicAddress(row.parties[victim]!), lostAddress));

    // both sides of every pair of the victim logged their move off the lost relay
    const moved = (i: number, j: number): RelayMove | undefined => relayMoves(ml, i).find((e) => e.peer === j && e.time >= tFault && !e.toRelay.includes(lostAddress));
    const rehomedAt = await waitUntil(() => {
      const ev = peers.flatMap((j) => [moved(victim, j), moved(j, victim)]);
      return ev.every((e) => e !== undefined) ? Math.max(...ev.map((e) => e!.time)) : undefined;
    }, 15_000, `party ${victim}'s pairs re-homed`, 100);
    rec.fallbackMs = rehomedAt - tFault;

    expect(runEndedAt, 'the run was still going when the pairs had re-homed').toBe(Infinity);
    const stats = await run;
    for (const s of stats) {
      expect(s.roundLatenciesMs, 'every round completed').toHaveLength(rounds);
      expect(s.messagesVerified, 'every message of the run verified').toBeGreaterThanOrEqual(rounds * (m - 1));
    }
    // the rounds were still going when the relay was lost: the stall shows in the worst round
    const worstRoundMs = Math.max(...stats.flatMap((s) => s.roundLatenciesMs));

    // no pair split: each side of every pair on the same relay, none on the lost one for the victim
    const st = ml.parties.map((p) => ml.status(p.index));
    const pairs: string[] = [];
    for (let i = 0; i < m; i++) for (let j = i + 1; j < m; j++) {
      const a = relayOf(st[i], j); const b = relayOf(st[j], i);
      expect(a, `pair ${i}↔${j} relayed`).toBeDefined();
      expect(a, `pair ${i}↔${j}: both sides on one relay`).toBe(b);
      if (i === victim || j === victim) expect(a).not.toContain(lostAddress);
      pairs.push(`${i}↔${j} ${relays.find((r) => a!.includes(lab.address(r)))}`);
    }
    rec.observed = `party ${victim}'s pairs re-homed ${rec.fallbackMs} ms after the loss; run of ${rounds} rounds + 1 MiB bulk per pair verified; ${pairs.join(', ')}`;
    rec.notes = `worst MPC round (the one the loss hit) ${Math.round(worstRoundMs)} ms; re-home time = blackhole → the last of both sides of every pair logging its relay → relay path change`;
    rec.pass = rec.fallbackMs <= row.maxRehomeMs;
    expect(rec.fallbackMs, `re-home time; logs in ${lab.logDir}`).toBeLessThanOrEqual(row.maxRehomeMs);
  });
}

/** The row's lab with its relays running (agents not started); always torn down. */
async function inLab(row: ReachRow, f: (lab: Lab, ml: MpycLab, relays: string[]) => Promise<void>): Promise<void> {
  const lab = await Lab.create(row.spec);
  try {
    const relays = row.relays ?? ['relay'];
    const ml = MpycLab.create(lab, { relays, relayArgs: row.relayArgs, parties: row.parties.map((node) => ({ node })) });
    for (let r = 0; r < relays.length; r++) await ml.startRelay(r);
    await f(lab, ml, relays);
  } finally {
    await lab.teardown();
  }
}

/** Distinct ports of UDP conntrack entries on `router` from `src` to `dst` (`which`: the destination port, or the source port). */
function distinctPorts(lab: Lab, router: string, src: string, dst: string, which: 'dport' | 'sport'): number {
  const ports = new Set<string>();
  for (const line of lab.conntrackList(router).split('\n')) {
    // "udp 17 29 src=10.1.0.10 dst=198.18.2.2 sport=40000 dport=1234 [UNREPLIED] src=… (reply tuple)": the first tuple is the original direction
    const m = /^udp\s.*?src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+)/.exec(line);
    if (m && m[1] === src && m[2] === dst) ports.add(which === 'dport' ? m[4]! : m[3]!);
  }
  return ports.size;
}

interface BirthdayLog { role: BirthdayRole; probes: number; found: boolean; ms: number }

function birthdayEnds(ml: MpycLab, i: number): BirthdayLog[] {
  return (ml.parties[i]!.proc?.jsonLines() ?? []).filter((j) => j.msg === 'birthday probing ended')
    .map((j) => ({ role: j.role as BirthdayRole, probes: Number(j.probes), found: j.found === true, ms: Number(j.ms) }));
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.floor((s.length - 1) / 2)]!;
}

/**
 * A two-party row run `trials` times in one lab (building a lab per trial would cost
 * seconds each): per trial both agents start afresh (new ports, new random NAT mappings),
 * and every router's conntrack table is flushed after they stop, so no mapping carries
 * over. A trial passes when both sides are direct within 15 s with the row's mechanism in
 * status. After each trial, the probes are counted twice: by the agents ('birthday probing
 * ended' lines) and on the NATs (distinct ports of the conntrack entries between the two
 * parties' addresses); neither may exceed the budget. The first trial also runs MPyC
 * traffic over the path (bytes verified). At least `atLeast` trials must pass.
 */
export async function runTrialsRow(row: TrialsRow, rec: ResultRow): Promise<void> {
  await inLab(row, async (lab, ml) => {
    const [na, nb] = row.parties as [string, string];
    const routers = row.spec.routers.map((r) => r.name);
    const times: number[] = [];
    const probes = { easy: [] as number[], hard: [] as number[] };
    const natCounts = { easy: 0, hard: 0 };
    let passed = 0;
    const failures: string[] = [];
    for (let t = 0; t < row.trials; t++) {
      // a row that can no longer pass stops here (a broken mechanism fails in a few trials, not twenty)
      if (passed + (row.trials - t) < row.atLeast) break;
      ml.startAgent(0); ml.startAgent(1);
      const st = (i: number) => ml.tryStatus(i)?.peers[0];
      const ok = await waitUntil(() => [0, 1].every((i) => { const p = st(i); return p?.path?.kind === 'direct' && p.path.mechanism === row.mechanism; }) || undefined, 15_000, 'both direct', 100)
        .then(() => true, () => false);
      if (ok && t === 0) {
        const stats = await ml.runSims({ rounds: 10, bulk: 64 * 1024, timeoutSec: 30, seed: `trial-${t}` });
        for (const s of stats) expect(s.messagesVerified).toBeGreaterThan(0);
        expect([0, 1].every((i) => st(i)?.path?.kind === 'direct'), 'still direct after the run').toBe(true);
      }
      if (ok) {
        const first = (i: number): number | undefined => ml.pathEvents(i).find((e) => e.to.startsWith('direct'))?.time;
        await waitUntil(() => (first(0) !== undefined && first(1) !== undefined) || undefined, 3000, 'path change lines', 100).catch(() => undefined);
        const a = first(0); const b = first(1);
        const up = Math.max(ml.agentStartedAt(0) ?? 0, ml.agentStartedAt(1) ?? 0);
        if (a !== undefined && b !== undefined) times.push(Math.max(a, b) - up);
        passed++;
      } else {
        failures.push(`trial ${t + 1}: ${[0, 1].map((i) => `${i} ${st(i)?.path?.kind ?? '-'} ${st(i)?.path?.kind === 'direct' ? (st(i)!.path as { mechanism?: string }).mechanism : ''}`).join(', ')} (logs ${lab.logDir})`);
      }
      await ml.stopAgent(0); await ml.stopAgent(1);
      // every probe of the trial, as the agents count them and as the NATs saw them
      for (const i of [0, 1]) {
        for (const e of birthdayEnds(ml, i)) {
          expect(e.probes, `party ${i} ${e.role} probes in one attempt`).toBeLessThanOrEqual(BUDGET[e.role]);
          probes[e.role].push(e.probes);
        }
      }
      const [ea, ha] = [lab.address(na), lab.address(nb)];
      const [ep, hp] = [lab.publicAddress(na), lab.publicAddress(nb)];
      const easyPorts = distinctPorts(lab, routers[0]!, ea, hp, 'dport');
      const hardPorts = distinctPorts(lab, routers[1]!, ha, ep, 'sport');
      // beside the birthday probes: the ordinary probes to the peer's signalled and observed addresses (a few)
      expect(easyPorts, 'ports of the hard side probed by the easy side (conntrack)').toBeLessThanOrEqual(BUDGET.easy + 4);
      expect(hardPorts, 'hard-side sockets that sent to the easy side (conntrack)').toBeLessThanOrEqual(HARD_SOCKETS + 4);
      natCounts.easy = Math.max(natCounts.easy, easyPorts);
      natCounts.hard = Math.max(natCounts.hard, hardPorts);
      for (const r of routers) lab.flushConntrack(r);
    }
    rec.observed = `direct (${row.mechanism}) in ${passed} of ${row.trials} trials`;
    if (times.length > 0) rec.timeToDirectMs = median(times);
    const spread = (xs: number[], unit = ''): string => (xs.length === 0 ? 'none' : `median ${median(xs)}${unit}, min ${Math.min(...xs)}, max ${Math.max(...xs)}`);
    rec.notes = `time to direct per trial: ${spread(times, ' ms')}; `
      + `probes per attempt (agents' count): easy ${spread(probes.easy)} of ${BUDGET.easy}, hard ${spread(probes.hard)} of ${BUDGET.hard}; `
      + `most ports seen by the NATs in one trial: ${natCounts.easy} probed by the easy side, ${natCounts.hard} hard-side sockets`
      + (failures.length > 0 ? `; failed: ${failures.join('; ')}` : '');
    rec.pass = passed >= row.atLeast;
    expect(passed, rec.notes).toBeGreaterThanOrEqual(row.atLeast);
  });
}

/**
 * No birthday probing where it must not happen (both NATs hard): no agent logged an
 * attempt, no status counts one, and the NATs saw no more than the ordinary probes.
 */
export function noBirthdayProbes(row: ReachRow): ReachRow {
  return {
    ...row,
    evidence: (lab, ml) => {
      for (const p of ml.parties) {
        expect((p.proc?.jsonLines() ?? []).filter((j) => j.msg === 'birthday probing'), `party ${p.index} birthday attempts`).toEqual([]);
        for (const q of ml.status(p.index).peers) expect(q.birthday, `party ${p.index} → ${q.index} birthday in status`).toBeUndefined();
      }
      const [a, b] = row.parties as [string, string];
      const r = row.spec.routers.map((x) => x.name);
      const ports = [distinctPorts(lab, r[0]!, lab.address(a), lab.publicAddress(b), 'dport'), distinctPorts(lab, r[1]!, lab.address(b), lab.publicAddress(a), 'dport')];
      for (const n of ports) expect(n, 'ports of the other NAT probed (conntrack)').toBeLessThanOrEqual(4);
      const kinds = ml.parties.map((p) => ml.status(p.index).mapping?.v4);
      expect(kinds, 'both sides know they are hard').toEqual(['dependent', 'dependent']);
      return `no birthday attempt; ports of the other NAT probed: ${ports.join(', ')} (conntrack); mapping ${kinds.join(' / ')}`;
    },
  };
}

export { runRow };
