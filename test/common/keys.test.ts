// Key files and key text: mode 0600, never overwritten by accident, clear refusals.
import { describe, it, expect, afterAll } from 'vitest';
import { mkdtempSync, rmSync, statSync, chmodSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { KeyFileError, readKeyFile, writeKeyFile } from '../../src/common/keys.js';
import { publicKeyOf } from '../../src/noise/index.js';
import { PeerKey } from '../../src/common/peer-key.js';

const dir = mkdtempSync(join(tmpdir(), 'keys-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const agentCli = join(import.meta.dirname, '../../dist/src/agent/cli.js');

describe('key files', () => {
  it('writeKeyFile creates mode 0600, refuses to overwrite, and readKeyFile gets the same pair back', () => {
    const path = join(dir, 'a.key');
    const kp = writeKeyFile(path);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(() => writeKeyFile(path)).toThrow(/already exists/);
    const back = readKeyFile(path);
    expect(Buffer.from(back.privateKey).equals(Buffer.from(kp.privateKey))).toBe(true);
    expect(PeerKey.fromBytes(back.publicKey).equals(PeerKey.fromBytes(publicKeyOf(kp.privateKey)))).toBe(true);
    const replaced = writeKeyFile(path, { force: true });
    expect(PeerKey.fromBytes(readKeyFile(path).publicKey).text).toBe(PeerKey.fromBytes(replaced.publicKey).text);
  });

  it('refuses group/world-readable, malformed and missing files with the path and the fix', () => {
    const path = join(dir, 'b.key');
    writeKeyFile(path);
    chmodSync(path, 0o644);
    expect(() => readKeyFile(path)).toThrow(/readable by group or others.*chmod 600/);
    const bad = join(dir, 'bad.key');
    writeFileSync(bad, 'not a key\n', { mode: 0o600 });
    expect(() => readKeyFile(bad)).toThrow(/bad\.key: not a key file/);
    expect(() => readKeyFile(join(dir, 'missing.key'))).toThrow(/missing\.key: cannot read key file \(ENOENT\)/);
    expect(() => readKeyFile(join(dir, 'missing.key'), { keygenCommand: 'mpyc-relay keygen' }))
      .toThrow(/ENOENT\); create one with: mpyc-relay keygen --out .*missing\.key$/);
    // a public key pasted where a key file is expected is named as such, not offered as a file name to create
    const pasted = 'jR5NH58mP0vYc7T5Gm0Vt3tq1tH4J2Wn8b8rJmZ2Q3s=';
    expect(() => readKeyFile(pasted, { keygenCommand: 'mpyc-agent keygen' }))
      .toThrow(/looks like a public key, not the path of a key file \(commands that take a public key take it with --pubkey\)$/);
    const big = join(dir, 'big.key');
    writeFileSync(big, 'A'.repeat(5000), { mode: 0o600 });
    expect(() => readKeyFile(big)).toThrow(/big\.key: not a key file \(5000 bytes/);
    for (const f of [path, bad, big, join(dir, 'missing.key')]) expect(() => readKeyFile(f)).toThrow(KeyFileError);
    expect(new KeyFileError('x').exitCode).toBe(3);
  });

  it('mpyc-agent keygen/pubkey: 0600 file, 44-char public key; key file problems exit 3 with the fix', () => {
    const path = join(dir, 'agent.key');
    const pub = execFileSync(process.execPath, [agentCli, 'keygen', '--out', path], { encoding: 'utf8' }).trim();
    expect(pub).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(execFileSync(process.execPath, [agentCli, 'pubkey', '--key', path], { encoding: 'utf8' }).trim()).toBe(pub);
    const again = spawnSync(process.execPath, [agentCli, 'keygen', '--out', path], { encoding: 'utf8' });
    expect(again.status).toBe(3);
    expect(again.stderr).toMatch(/already exists/);
    chmodSync(path, 0o604);
    const loose = spawnSync(process.execPath, [agentCli, 'pubkey', '--key', path], { encoding: 'utf8' });
    expect(loose.status).toBe(3);
    expect(loose.stderr).toMatch(/chmod 600/);
    const missing = spawnSync(process.execPath, [agentCli, 'pubkey', '--key', join(dir, 'none.key')], { encoding: 'utf8' });
    expect(missing.status).toBe(3);
    expect(missing.stderr).toMatch(/none\.key: cannot read key file \(ENOENT\); create one with: mpyc-agent keygen --out .*none\.key/);
    const bad = spawnSync(process.execPath, [agentCli, 'frobnicate'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/unknown command.*Try: mpyc-agent --help/s);
  });
});
