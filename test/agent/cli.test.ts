// The mpyc-agent command line as users run it (built dist/), including its error messages.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { startRelay, type Relay } from '../relay/helpers.js';
import { encodeKey } from '../../src/common/base64.js';

const cli = join(import.meta.dirname, '../../dist/src/agent/cli.js');
let dir: string;
let relay: Relay;
let relayAddr: string;

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { timeout: 20_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'agent-cli-'));
  relay = await startRelay();
  relayAddr = `${encodeKey(relay.key.publicKey)}@127.0.0.1:${relay.udpPort}/${relay.httpPort}`;
});
afterAll(async () => {
  await relay.server.stop(false);
  rmSync(dir, { recursive: true, force: true });
});

async function makeSession(name: string, parties: number): Promise<{ session: string; keys: string[] }> {
  const session = join(dir, `${name}.json`);
  expect((await run(['session', 'create', session, '--relay', relayAddr])).code).toBe(0);
  const keys: string[] = [];
  for (let i = 0; i < parties; i++) {
    const key = join(dir, `${name}-${i}.key`);
    const r = await run(['keygen', '--out', key]);
    expect(r.code).toBe(0);
    expect((await run(['session', 'add', session, '--pubkey', r.stdout.trim()])).code).toBe(0);
    keys.push(key);
  }
  return { session, keys };
}

describe('mpyc-agent CLI', () => {
  it('--help explains every command, and up --help every option', async () => {
    const top = await run(['--help']);
    expect(top.code).toBe(0);
    for (const cmd of ['keygen', 'pubkey', 'session', 'up', 'status']) expect(top.stdout).toContain(`mpyc-agent ${cmd}`);
    const up = await run(['up', '--help']);
    expect(up.code).toBe(0);
    for (const opt of ['--key', '--relay-only', '--relay-transport', '--local-base', '--forward', '--allow-port', '--control', '--metrics', '--log-level']) expect(up.stdout).toContain(opt);
  });

  it('bad input gives a clear error and exit code 2', async () => {
    const { session, keys } = await makeSession('bad', 2);
    const missing = await run(['up', join(dir, 'nope.json'), '--key', keys[0]!]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/nope\.json/);

    const stranger = join(dir, 'stranger.key');
    await run(['keygen', '--out', stranger]);
    const notIn = await run(['up', session, '--key', stranger]);
    expect(notIn.code).toBe(2);
    expect(notIn.stderr).toMatch(/not (in|found|listed)|own key|missing/i);

    const broken = join(dir, 'broken.json');
    writeFileSync(broken, '{"version": 1, "relays": [], "parties": [}');
    const syntax = await run(['up', broken, '--key', keys[0]!]);
    expect(syntax.code).toBe(2);
    expect(syntax.stderr).toMatch(/broken\.json.*(line|:\d+)/);

    chmodSync(keys[1]!, 0o644);
    const open = await run(['up', session, '--key', keys[1]!]);
    expect(open.code).toBe(2);
    expect(open.stderr).toMatch(/chmod 600/);

    const badFlag = await run(['up', session, '--key', keys[0]!, '--relay-transport', 'carrier-pigeon']);
    expect(badFlag.code).toBe(2);
    expect(badFlag.stderr).toMatch(/--relay-transport/);

    const noAgent = await run(['status', '--control', join(dir, 'none.sock')]);
    expect(noAgent.code).toBe(1);
    expect(noAgent.stderr).toMatch(/is the agent running/);
  }, 60_000);

  it('up prints the MPyC command line, answers status over the control socket, and exits 0 on SIGTERM', async () => {
    const { session, keys } = await makeSession('good', 2);
    const control = join(dir, 'good.sock');
    const child = spawn(process.execPath, [cli, 'up', session, '--key', keys[1]!, '--bind', '127.0.0.1', '--local-base', '31000', '--control', control, '--log-level', 'warn'],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines = createInterface({ input: child.stdout! });
    const firstLines: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no MPyC command line printed')), 15_000);
      lines.on('line', (l) => { firstLines.push(l); if (/python demo\.py/.test(l)) { clearTimeout(t); resolve(); } });
      child.on('exit', (c) => reject(new Error(`agent exited ${c}`)));
    });
    expect(firstLines.join('\n')).toContain('python demo.py -M2 -I 1 -B 31000');
    const st = await run(['status', '--json', '--control', control]);
    expect(st.code).toBe(0);
    const status = JSON.parse(st.stdout) as { ownIndex: number; peers: { index: number; state: string }[] };
    expect(status.ownIndex).toBe(1);
    expect(status.peers.map((p) => p.index)).toEqual([0]);
    const human = await run(['status', '--control', control]);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/connecting|relay|direct/);
    const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  }, 60_000);
});
