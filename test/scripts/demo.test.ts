// The README's main command must keep working: run the built demo end to end (real relay,
// three real agent daemons, three MPyC-like parties, status over the control sockets).
import { describe, it, expect } from 'vitest';
import { execFile } from 'node:child_process';
import { join } from 'node:path';

function runDemo(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const demo = join(import.meta.dirname, '../../dist/scripts/demo.js');
  return new Promise((resolve) => {
    execFile(process.execPath, [demo, ...args], { timeout: 90_000 }, (err, out, errOut) =>
      resolve({ code: err ? (err as { code?: number }).code ?? 1 : 0, stdout: out, stderr: errOut }));
  });
}

describe('npm run demo (dist/scripts/demo.js)', () => {
  it('relay + invite + 3 joins with --up + 3 MPyC-like parties: one fingerprint, every byte verified, every pair on a direct path', async () => {
    const { code, stdout, stderr } = await runDemo(['--rounds', '20', '--bulk', '100000']);
    expect(code, stdout + stderr).toBe(0);
    // the session came from the invite flow: every party printed the same roster fingerprint
    const prints = [...stdout.matchAll(/agent (\d) +up: roster fingerprint ([A-Z2-7-]+)/g)];
    expect(prints.map((m) => m[1])).toEqual(['0', '1', '2']);
    expect(new Set(prints.map((m) => m[2])).size).toBe(1);
    expect(stdout).toMatch(/session +every party wrote the same session file/);
    expect(stdout.match(/mpyc \d +done: \d+ messages verified/g)).toHaveLength(3);
    for (const pair of ['0 ↔ 1', '0 ↔ 2', '1 ↔ 2']) expect(stdout).toMatch(new RegExp(`${pair} +direct 127\\.0\\.0\\.1:\\d+`));
    expect(stdout).toMatch(/demo +complete/);
  }, 100_000);

  it('with --relay-only 2, the pairs of party 2 stay on the relay and the others go direct', async () => {
    const { code, stdout, stderr } = await runDemo(['--rounds', '10', '--bulk', '50000', '--relay-only', '2']);
    expect(code, stdout + stderr).toBe(0);
    expect(stdout).toMatch(/0 ↔ 1 +direct/);
    expect(stdout).toMatch(/0 ↔ 2 +relay \(udp\)/);
    expect(stdout).toMatch(/1 ↔ 2 +relay \(udp\)/);
  }, 100_000);
});
