// The mpyc-agent command line as users run it (built dist/), including its error messages.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { startRelay, type Relay } from '../relay/helpers.js';
import { PeerKey } from '../../src/common/peer-key.js';
import { freeBases } from '../../src/common/ports.js';
import { createServer } from 'node:net';

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => resolve(p)); });
  });
}

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
  relayAddr = `${PeerKey.fromBytes(relay.key.publicKey).text}@127.0.0.1:${relay.udpPort}/${relay.httpPort}`;
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

  it('bad input: a clear message and the documented exit code (2 usage, 3 key or session file, 1 no agent)', async () => {
    const { session, keys } = await makeSession('bad', 2);
    const missing = await run(['up', join(dir, 'nope.json'), '--key', keys[0]!]);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toMatch(/nope\.json: cannot read \(ENOENT\)/);

    const stranger = join(dir, 'stranger.key');
    await run(['keygen', '--out', stranger]);
    const notIn = await run(['up', session, '--key', stranger]);
    expect(notIn.code).toBe(3);
    expect(notIn.stderr).toMatch(/own key .* is not in the session file; add it with: mpyc-agent session add/);

    // the same bad file gives the same exit code to `up` and to `session show`
    const broken = join(dir, 'broken.json');
    writeFileSync(broken, '{"version": 1, "relays": [], "parties": [}');
    const syntax = await run(['up', broken, '--key', keys[0]!]);
    const shown = await run(['session', 'show', broken]);
    expect(syntax.code).toBe(3);
    expect(shown.code).toBe(3);
    expect(syntax.stderr).toMatch(/broken\.json:1:\d+: JSON syntax error/);
    expect(shown.stderr).toMatch(/broken\.json:1:\d+: JSON syntax error/);
    const onlyOne = join(dir, 'one.json');
    expect((await run(['session', 'create', onlyOne, '--relay', relayAddr])).code).toBe(0);
    expect((await run(['session', 'add', onlyOne, '--key', keys[0]!])).code).toBe(0);
    expect((await run(['up', onlyOne, '--key', keys[0]!])).code).toBe(3);
    expect((await run(['session', 'show', onlyOne])).code).toBe(3);

    chmodSync(keys[1]!, 0o644);
    const open = await run(['up', session, '--key', keys[1]!]);
    expect(open.code).toBe(3);
    expect(open.stderr).toMatch(/chmod 600/);
    const noKey = await run(['up', session, '--key', join(dir, 'absent.key')]);
    expect(noKey.code).toBe(3);
    expect(noKey.stderr).toMatch(/absent\.key: cannot read key file \(ENOENT\); create one with: mpyc-agent keygen --out \S*absent\.key/);

    const badFlag = await run(['up', session, '--key', keys[0]!, '--relay-transport', 'carrier-pigeon']);
    expect(badFlag.code).toBe(2);
    expect(badFlag.stderr).toMatch(/--relay-transport: must be auto, udp or ws/);

    const noAgent = await run(['status', '--control', join(dir, 'none.sock')]);
    expect(noAgent.code).toBe(1);
    expect(noAgent.stderr).toMatch(/is the agent running/);
  }, 60_000);

  it('up prints the MPyC command line, answers status over the control socket, and exits 0 on SIGTERM', async () => {
    const { session, keys } = await makeSession('good', 2);
    const control = join(dir, 'good.sock');
    const metricsPort = await freePort();
    const [base] = await freeBases(1, 2);
    const child = spawn(process.execPath, [cli, 'up', session, '--key', keys[1]!, '--bind', '127.0.0.1', '--local-base', String(base), '--control', control, '--log-level', 'warn',
      '--metrics', `127.0.0.1:${metricsPort}`],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines = createInterface({ input: child.stdout! });
    const firstLines: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no MPyC command line printed')), 15_000);
      lines.on('line', (l) => { firstLines.push(l); if (/python demo\.py/.test(l)) { clearTimeout(t); resolve(); } });
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
      child.on('exit', (c) => reject(new Error(`agent exited ${c}: ${stderr}`)));
    });
    expect(firstLines.join('\n')).toContain(`python demo.py -M2 -I 1 -B ${base}`);
    const st = await run(['status', '--json', '--control', control]);
    expect(st.code).toBe(0);
    const status = JSON.parse(st.stdout) as { ownIndex: number; peers: { index: number; state: string }[] };
    expect(status.ownIndex).toBe(1);
    expect(status.peers.map((p) => p.index)).toEqual([0]);
    const human = await run(['status', '--control', control]);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/connecting|relay|direct/);
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(metrics).toMatch(/# TYPE mpyc_agent_bytes_total counter/);
    expect(metrics).toMatch(/mpyc_agent_relay_registered [01]/);
    const health = await fetch(`http://127.0.0.1:${metricsPort}/healthz`);
    expect(health.status).toBe(200);
    expect(health.headers.get('content-type')).toBe('application/json');
    const h = await health.json() as { status: string; party: number; relayRegistered: boolean; peers: Record<string, number> };
    expect(h.status).toBe('ok');
    expect(h.party).toBe(1);
    expect(typeof h.relayRegistered).toBe('boolean');
    expect(Object.values(h.peers).reduce((a, b) => a + b, 0)).toBe(1);
    expect((await fetch(`http://127.0.0.1:${metricsPort}/nothing`)).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${metricsPort}/healthz`, { method: 'POST' })).status).toBe(405);
    const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  }, 60_000);
});
