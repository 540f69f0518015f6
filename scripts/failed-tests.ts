#!/usr/bin/env node
// After `npm test`: one line per failed test from vitest's JSON reports (file › test: the
// first line of its error), so the end of a long CI log says what failed.
// Usage: node dist/scripts/failed-tests.js REPORT.json [REPORT.json ...]
import { existsSync, readFileSync } from 'node:fs';
import { relative } from 'node:path';

interface Assertion { fullName?: string; title: string; status: string; failureMessages?: string[] }
interface FileResult { name: string; status: string; message?: string; assertionResults?: Assertion[] }

/** The first line of a failure message that says something (no colour codes, at most 300 characters). */
function firstLine(text: string | undefined): string {
  // eslint-disable-next-line no-control-regex
  const clean = (text ?? '').replace(/\u001b\[[0-9;]*m/g, '');
  const line = clean.split('\n').map((l) => l.trim()).find((l) => l.length > 0) ?? '(no message)';
  return line.length > 300 ? `${line.slice(0, 297)}...` : line;
}

const lines: string[] = [];
for (const path of process.argv.slice(2)) {
  if (!existsSync(path)) { lines.push(`${path}: no report (the suite did not finish?)`); continue; }
  let files: FileResult[];
  try {
    files = (JSON.parse(readFileSync(path, 'utf8')) as { testResults?: FileResult[] }).testResults ?? [];
  } catch (e) {
    lines.push(`${path}: unreadable report (${(e as Error).message})`);
    continue;
  }
  for (const f of files) {
    const file = relative(process.cwd(), f.name);
    const failed = (f.assertionResults ?? []).filter((a) => a.status === 'failed');
    for (const a of failed) lines.push(`${file} › ${a.fullName ?? a.title}: ${firstLine(a.failureMessages?.[0])}`);
    if (failed.length === 0 && f.status === 'failed') lines.push(`${file}: ${firstLine(f.message)}`);
  }
}
process.stdout.write(lines.length === 0 ? 'failed tests: none\n' : `failed tests (${lines.length}):\n${lines.map((l) => `  ${l}`).join('\n')}\n`);
