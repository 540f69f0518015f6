// The invite flow end to end, as users run it: the built mpyc-relay and mpyc-agent binaries,
// a real relay process, `invite create`, every party's `join --up`, then MPyC-pattern
// traffic through the agents those joins started; then joining again, a full lobby, and
// an existing session file that differs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join as pathJoin } from 'node:path';
import { freeBases } from '../../src/common/ports.js';
import { runParty } from '../../src/tools/mpyc-sim.js';
import { CliWorld, fingerprintOf, type CliRelay } from './cli-helpers.js';

const w = new CliWorld();
let relay: CliRelay;
beforeAll(async () => { relay = await w.startRelay('relay'); });
afterAll(() => w.cleanup());

describe('mpyc-agent invite create / join (real binaries, real relay)', () => {
  for (const m of [3, 5]) {
    it(`${m} parties join with --up: byte-identical session files, one fingerprint, then MPyC-pattern traffic through the agents`, async () => {
      const invite = await w.createInvite(relay.address, m, ['--name', `e2e-${m}`]);
      const bases = await freeBases(m, m);
      const parties = await Promise.all(bases.map((b, i) => w.joinUp(invite, `p${i}`, pathJoin(w.dir, `m${m}-p${i}`), b)));
      try {
        const files = parties.map((_, i) => readFileSync(pathJoin(w.dir, `m${m}-p${i}`, 'session.json')));
        for (const f of files) expect(f.equals(files[0]!)).toBe(true);
        const prints = parties.map((p) => fingerprintOf(p.stdout()));
        expect(new Set(prints).size).toBe(1);
        expect(prints[0]).toMatch(/^[A-Z2-7]{4}(-[A-Z2-7]{4}){3}$/);
        // which index each joiner got (join order is each member's own clock)
        const pids = parties.map((p) => Number(/party (\d+) of \d+; run MPyC/.exec(p.stdout())?.[1]));
        expect([...pids].sort()).toEqual([...Array(m).keys()]);
        const session = JSON.parse(files[0]!.toString()) as { parties: { name: string }[] };
        pids.forEach((pid, i) => expect(session.parties[pid]!.name).toBe(`p${i}`));
        const stats = await Promise.all(pids.map((pid, i) => runParty({
          m, pid, basePort: bases[i]!, host: 'localhost', rounds: 5, bulkBytes: 20_000, seed: `lobby${m}`, timeoutMs: 45_000,
        })));
        for (const s of stats) {
          expect(s.messagesVerified).toBe((m - 1) * (5 + 2));
          expect(s.unidentifiedConnections).toBe(0);
        }
      } finally {
        await Promise.all(parties.map((p) => new Promise<void>((r) => { if (p.child.exitCode !== null) { r(); return; } p.child.once('exit', () => r()); p.child.kill('SIGTERM'); })));
      }
      if (m !== 3) return;
      // the same party joining again: same seat, same file ("unchanged"), same fingerprint
      const again = await w.agent(['join', invite, '--name', 'p0', '--key', 'party.key', '--out', 'session.json'], pathJoin(w.dir, 'm3-p0'));
      expect(again.code, again.stderr).toBe(0);
      expect(again.stdout).toMatch(/session\.json: unchanged/);
      expect(again.stderr).toMatch(/already joined as "p0"/);
      expect(fingerprintOf(again.stdout)).toBe(fingerprintOf(parties[0]!.stdout()));
      // someone else, with the lobby full
      const late = await w.agent(['join', invite, '--name', 'zoe', '--create-key', '--key', 'zoe.key', '--out', 'zoe.json']);
      expect(late.code).toBe(1);
      expect(late.stderr).toMatch(/the lobby is full: 3 of 3 have joined \(p\d, p\d, p\d\)/);
      // an existing, different session file is not overwritten without --force
      const otherDir = pathJoin(w.dir, 'm3-p1');
      writeFileSync(pathJoin(otherDir, 'other.json'), readFileSync(pathJoin(w.dir, 'm3-p0', 'session.json'), 'utf8').replace('"basePort": 11365', '"basePort": 11366'));
      const clash = await w.agent(['join', invite, '--name', 'p1', '--key', 'party.key', '--out', 'other.json'], otherDir);
      expect(clash.code).toBe(1);
      expect(clash.stderr).toMatch(/holds a different session; not overwritten/);
      const forced = await w.agent(['join', invite, '--name', 'p1', '--key', 'party.key', '--out', 'other.json', '--force'], otherDir);
      expect(forced.code, forced.stderr).toBe(0);
      expect(readFileSync(pathJoin(otherDir, 'other.json')).equals(readFileSync(pathJoin(otherDir, 'session.json')))).toBe(true);
    }, 120_000);
  }
});
