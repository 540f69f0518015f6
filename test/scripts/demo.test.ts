// The README's main command must keep working: run the built demo end to end.
import { describe, it, expect } from 'vitest';
import { execFile } from 'node:child_process';
import { join } from 'node:path';

describe('npm run demo (dist/scripts/demo.js)', () => {
  it('completes STUN, registration, the end-to-end handshake and the message exchange', async () => {
    const demo = join(import.meta.dirname, '../../dist/scripts/demo.js');
    const { code, stdout } = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
      execFile(process.execPath, [demo], { timeout: 45_000 }, (err, out) => resolve({ code: err ? (err as { code?: number }).code ?? 1 : 0, stdout: out }));
    });
    expect(code, stdout).toBe(0);
    expect(stdout).toMatch(/alice +STUN says my address is 127\.0\.0\.1:\d+/);
    expect(stdout).toMatch(/registered with the relay over udp/);
    expect(stdout).toMatch(/registered with the relay over ws/);
    expect(stdout.match(/received "round \d: share from (alice|bob)"/g)).toHaveLength(6);
    expect(stdout).toContain('demo: OK');
  });
});
