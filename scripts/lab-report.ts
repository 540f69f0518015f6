#!/usr/bin/env node
// Turns the lab run's result files ($LAB_RESULTS_DIR, default $TMPDIR/mpyc-lab-results-<hash of the cwd>)
// into the markdown table of docs/lab-results.md.
// Usage: node dist/scripts/lab-report.js [--out FILE]   (without --out: print only)
import { writeFileSync } from 'node:fs';
import { readResults, resultsDir, resultsMarkdown } from '../src/lab/results.js';

const args = process.argv.slice(2);
const outIdx = args.indexOf('--out');
const out = outIdx >= 0 ? args[outIdx + 1] : undefined;
if (args.includes('-h') || args.includes('--help') || (outIdx >= 0 && !out)) {
  process.stdout.write('usage: lab-report [--out FILE]\n');
  process.exit(outIdx >= 0 && !out ? 2 : 0);
}
const { rows, written } = readResults();
if (rows.length === 0) {
  process.stderr.write(`lab-report: no results in ${resultsDir()} (did the lab tests run?)\n`);
  process.exit(1);
}
const last = written.sort().pop() ?? '';
const meta = `Run: ${last.slice(0, 16).replace('T', ' ')} UTC, ${rows.length} rows, ${rows.filter((r) => r.pass).length} as expected.`;
const md = resultsMarkdown(rows, meta);
if (out) writeFileSync(out, md);
process.stdout.write(md);
