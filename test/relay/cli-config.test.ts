// mpyc-relay serve's configuration (src/relay/serve-settings.ts over src/common/config.ts):
// flag > MPYC_RELAY_* > --config file > default, each value's origin in --check and in
// errors, the shared exit codes, and SIGHUP reloading the allow-list and the log level.
import { describe, it, expect, afterAll } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as dgram from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateKeyPair, type KeyPair } from '../../src/noise/index.js';
import { PeerKey } from '../../src/common/peer-key.js';
import { RelayClient } from '../../src/relay/client.js';
import { isRelayFrame } from '../../src/relay/wire.js';
import { waitFor } from './helpers.js';

const CLI = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../dist/src/relay/cli.js');
const dir = mkdtempSync(join(tmpdir(), 'mpyc-relay-config-'));
const procs: ChildProcess[] = [];
afterAll(() => { for (const p of procs) p.kill('SIGKILL'); rmSync(dir, { recursive: true, force: true }); });

/** the environment without any MPYC_RELAY_* of the runner's, plus `env` */
const envWith = (env: Record<string, string>): NodeJS.ProcessEnv =>
  ({ ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MPYC_RELAY_'))), ...env });

function run(args: string[], env: Record<string, string> = {}): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 15_000, env: envWith(env) });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const key = join(dir, 'relay.key');
spawnSync(process.execPath, [CLI, 'keygen', '--out', key]);
const keyText = (): string => PeerKey.fromBytes(generateKeyPair().publicKey).text;
/** the --check line of one option: its value and origin */
const checkLine = (out: string, opt: string): string | undefined => out.split('\n').find((l) => l.trimStart().startsWith(`${opt} `))?.trim();

describe('mpyc-relay serve configuration', () => {
  it('flag > MPYC_RELAY_* > file > default, with each origin in --check; --check binds nothing', async () => {
    const file = join(dir, 'relay.json');
    writeFileSync(file, `{\n  "key": ${JSON.stringify(key)},\n  "log-level": "warn",\n  "rate": 5000,\n  "http": "off"\n}\n`);
    // a port in use: --check must not try to bind it
    const busy = dgram.createSocket('udp4');
    await new Promise<void>((r) => busy.bind(0, '127.0.0.1', () => r()));
    const udp = `127.0.0.1:${busy.address().port}`;
    try {
      const flag = run(['serve', '--config', file, '--udp', udp, '--log-level', 'debug', '--check'], { MPYC_RELAY_LOG_LEVEL: 'error' });
      expect(flag.code, flag.stderr).toBe(0);
      expect(flag.stdout).toMatch(/^mpyc-relay serve: settings are valid; relay key [A-Za-z0-9+/]{43}=$/m);
      expect(checkLine(flag.stdout, 'log-level')).toBe('log-level                   "debug"  (--log-level)');
      expect(checkLine(flag.stdout, 'rate')).toMatch(/^rate +"5000" +\(.*relay\.json:4:\d+: rate\)$/);
      expect(checkLine(flag.stdout, 'workers')).toMatch(/^workers +\(default\) +\(default\)$/);
      const env = run(['serve', '--config', file, '--udp', udp, '--check'], { MPYC_RELAY_LOG_LEVEL: 'error' });
      expect(checkLine(env.stdout, 'log-level')).toMatch(/"error" +\(MPYC_RELAY_LOG_LEVEL\)$/);
      const fromFile = run(['serve', '--udp', udp, '--check'], { MPYC_RELAY_CONFIG: file });
      expect(fromFile.code, fromFile.stderr).toBe(0);
      expect(checkLine(fromFile.stdout, 'log-level')).toMatch(/"warn" +\(.*relay\.json:3:\d+: log-level\)$/);
    } finally { busy.close(); }
  });

  it('errors name their origin and exit 2: unknown file key, unknown variable, a bad value in the file', () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, `{\n  "key": ${JSON.stringify(key)},\n  "rat": 5\n}\n`);
    const unknown = run(['serve', '--config', bad, '--check']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/bad\.json:3:\d+: rat: unknown option/);
    const v = run(['serve', '--key', key, '--check'], { MPYC_RELAY_RAET: '5' });
    expect(v.code).toBe(2);
    expect(v.stderr).toMatch(/MPYC_RELAY_RAET: unknown variable/);
    writeFileSync(bad, `{\n  "key": ${JSON.stringify(key)},\n  "rate": "fast"\n}\n`);
    const value = run(['serve', '--config', bad, '--check']);
    expect(value.code).toBe(2);
    expect(value.stderr).toMatch(/bad\.json:3:\d+: rate: expected a positive integer, got "fast"/);
    expect(run(['serve', '--key', join(dir, 'missing.key'), '--check']).code).toBe(3);
  });

  it('SIGHUP reads the config again: the allow-list and the log level apply, other changes wait for a restart', async () => {
    const allow = join(dir, 'allow');
    writeFileSync(allow, `${keyText()}\n`);
    const file = join(dir, 'hup.json');
    const write = (o: Record<string, unknown>): void => writeFileSync(file, JSON.stringify({ key, allow, udp: '127.0.0.1:0', http: 'off', 'log-format': 'json', ...o }));
    write({ 'log-level': 'info' });
    const p = spawn(process.execPath, [CLI, 'serve', '--config', file], { stdio: ['ignore', 'ignore', 'pipe'], env: envWith({}) });
    procs.push(p);
    const lines: Array<Record<string, unknown>> = [];
    let buf = '';
    p.stderr!.on('data', (d) => {
      buf += String(d);
      const parts = buf.split('\n');
      buf = parts.pop()!;
      for (const l of parts) { try { lines.push(JSON.parse(l)); } catch { /* not JSON */ } }
    });
    await waitFor(() => lines.some((l) => l.msg === 'listening' && l.allowList === 1), 10_000, 'listening with a 1-key allow-list');
    const udpPort = lines.find((l) => l.msg === 'listening')!.udpPort as number;
    const relayKey = String(lines.find((l) => l.msg === 'listening')!.relayAddress).split('@')[0]!;
    const newcomer = generateKeyPair();
    const state = async (kp: KeyPair): Promise<string> => {
      const s = dgram.createSocket('udp4');
      await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
      const c = new RelayClient({ relayKey, keyPair: kp, transport: 'udp', sendUdp: (b) => s.send(b, udpPort, '127.0.0.1') });
      s.on('message', (m) => { if (isRelayFrame(m)) c.handleDatagram(m); });
      c.start();
      try {
        await waitFor(() => c.state === 'registered' || c.state === 'rejected', 5000, 'an answer to the registration');
        return c.state;
      } finally { c.close(); s.close(); }
    };
    expect(await state(newcomer)).toBe('rejected');
    writeFileSync(allow, `${keyText()}\n${PeerKey.fromBytes(newcomer.publicKey).text}\n`);
    p.kill('SIGHUP');
    await waitFor(() => lines.some((l) => l.msg === 'config reloaded' && l.allowList === 2), 5000, 'the allow-list reloaded');
    expect(await state(newcomer)).toBe('registered');
    // log level warn: the next reload's info line is not written, its restart warning is
    write({ 'log-level': 'warn', rate: 7 });
    p.kill('SIGHUP');
    await waitFor(() => lines.some((l) => String(l.msg).includes('after a restart')), 5000, 'the restart warning');
    const warning = lines.find((l) => String(l.msg).includes('after a restart'))!;
    expect(warning.options).toEqual(['rate']);
    await new Promise((r) => setTimeout(r, 200));
    expect(lines.filter((l) => l.msg === 'config reloaded')).toHaveLength(1);
    // a broken file keeps what runs
    writeFileSync(file, '{ "key": ');
    p.kill('SIGHUP');
    await waitFor(() => lines.some((l) => l.msg === 'config reload failed; keeping the current settings'), 5000, 'the failed reload');
    expect(p.exitCode).toBeNull();
    p.kill('SIGTERM');
  }, 30_000);
});
