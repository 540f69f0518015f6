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
import type { ReachRow, RelayLossRow } from './reach-rows.js';
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

interface RelayMove { time: number; peer: number; toRelay: string }

function relayMoves(ml: MpycLab, i: number): RelayMove[] {
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
  const lab = await Lab.create(row.spec);
  try {
    const relays = row.relays ?? ['relay'];
    const ml = MpycLab.create(lab, { relays, parties: row.parties.map((node) => ({ node })) });
    for (let r = 0; r < relays.length; r++) await ml.startRelay(r);
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
  } finally {
    await lab.teardown();
  }
}

export { runRow };
