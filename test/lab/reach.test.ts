// Issue #14's reach rows with the real agent (specs in reach-rows.ts): IPv6-only parties
// behind stateful firewalls and a dual-stack pair behind symmetric IPv4 NATs (direct over
// IPv6), and one party losing its relay alone (its pairs re-homed, the run unbroken).
// Results in the 'reach' section of docs/lab-results.md.
import { afterAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { writeResults, type ResultRow } from '../../src/lab/results.js';
import { rowTests } from './rows.js';
import { BIRTHDAY_ROWS, IPV6_ROWS, PORT_MAPPING_ROWS, RELAY_ROWS } from './reach-rows.js';
import { noBirthdayProbes, runRelayLossRow, runTrialsRow, withMechanismCheck } from './reach-run.js';
import type { TrialsRow } from './reach-rows.js';
import { DIST, labRequired, labSkipReason } from './helpers.js';

rowTests({ title: 'reach: IPv6', section: 'reach', file: 'reach-ipv6', rows: IPV6_ROWS.map(withMechanismCheck) });
rowTests({ title: 'reach: port mapping', section: 'reach', file: 'reach-portmap', rows: PORT_MAPPING_ROWS.map(withMechanismCheck), portMapping: true });

const skip = labSkipReason([join(DIST, 'src', 'agent', 'cli.js'), join(DIST, 'scripts', 'mpyc-sim.js')]);
if (skip !== undefined && labRequired()) {
  describe('NAT lab required here (CI as root or LAB_REQUIRED=1)', () => { it('can run', () => { expect.fail(`the lab cannot run: ${skip}`); }); });
}

describe.skipIf(skip !== undefined)('reach: every relay at once', () => {
  const results: ResultRow[] = [];
  afterAll(() => { if (results.length > 0) writeResults('reach-relays', results); });
  for (const row of RELAY_ROWS) {
    it(`${row.title}: ${row.expected}`, async () => {
      const rec: ResultRow = { section: 'reach', row: row.title, expected: row.expected, observed: 'not reached', pass: false };
      results.push(rec);
      await runRelayLossRow(row, rec);
    }, 120_000);
  }
});

const isTrials = (r: object): r is TrialsRow => 'trials' in r;
rowTests({ title: 'reach: never birthday probing when both are hard', section: 'reach', file: 'reach-birthday-none', rows: BIRTHDAY_ROWS.filter((r) => !isTrials(r)).map(noBirthdayProbes) });

describe.skipIf(skip !== undefined)('reach: birthday probing, fresh trials', () => {
  const results: ResultRow[] = [];
  afterAll(() => { if (results.length > 0) writeResults('reach-birthday', results); });
  for (const row of BIRTHDAY_ROWS.filter(isTrials)) {
    it(`${row.title}: ${row.expected}`, async () => {
      const rec: ResultRow = { section: 'reach', row: row.title, expected: row.expected, observed: 'not reached', pass: false };
      results.push(rec);
      await runTrialsRow(row, rec);
    }, 240_000);
  }
});
