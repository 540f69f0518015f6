// `npm test`'s last lines (scripts/failed-tests.ts): every failed test of vitest's JSON
// reports named with its first error line; a missing or unreadable report said so.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SCRIPT = join(import.meta.dirname, '../../dist/scripts/failed-tests.js');

describe('failed-tests (the end of npm test)', () => {
  it('names each failed test with its first error line, a file that failed to load, a missing and an unreadable report', () => {
    const dir = mkdtempSync(join(tmpdir(), 'failed-tests-'));
    try {
      const report = {
        testResults: [
          { name: join(process.cwd(), 'test/a.test.ts'), status: 'failed', assertionResults: [
            { fullName: 'group one passes', title: 'one passes', status: 'passed' },
            { fullName: 'group two fails', title: 'two fails', status: 'failed', failureMessages: ['\u001b[31mAssertionError: expected 1 to be 2\u001b[39m\n    at x.ts:1'] },
          ] },
          { name: join(process.cwd(), 'test/b.test.ts'), status: 'failed', message: 'SyntaxError: bad import', assertionResults: [] },
          { name: join(process.cwd(), 'test/c.test.ts'), status: 'passed', assertionResults: [{ title: 'ok', status: 'passed' }] },
        ],
      };
      writeFileSync(join(dir, 'unit.json'), JSON.stringify(report));
      writeFileSync(join(dir, 'bad.json'), '{ not json');
      const out = execFileSync(process.execPath, [SCRIPT, join(dir, 'unit.json'), join(dir, 'bad.json'), join(dir, 'none.json')], { encoding: 'utf8' });
      expect(out.split('\n')).toEqual([
        'failed tests (4):',
        '  test/a.test.ts › group two fails: AssertionError: expected 1 to be 2',
        '  test/b.test.ts: SyntaxError: bad import',
        expect.stringMatching(/^ {2}.*bad\.json: unreadable report/),
        expect.stringMatching(/^ {2}.*none\.json: no report \(the suite did not finish\?\)$/),
        '',
      ]);
      writeFileSync(join(dir, 'green.json'), JSON.stringify({ testResults: [report.testResults[2]] }));
      expect(execFileSync(process.execPath, [SCRIPT, join(dir, 'green.json')], { encoding: 'utf8' })).toBe('failed tests: none\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
