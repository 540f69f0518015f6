// The mpyc-relay CLI as users run it (built dist/ JS; `npm test` builds first).
import { describe, it, expect, afterAll } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, chmodSync, writeFileSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as dgram from 'node:dgram';
import { RelayClient } from '../../src/relay/client.js';
import { generateKeyPair } from '../../src/noise/index.js';
import { PeerKey } from '../../src/common/peer-key.js';
import { waitFor } from './helpers.js';

const CLI = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../dist/src/relay/cli.js');
const dir = mkdtempSync(join(tmpdir(), 'mpyc-relay-cli-'));
const procs: ChildProcess[] = [];
afterAll(() => { for (const p of procs) p.kill('SIGKILL'); rmSync(dir, { recursive: true, force: true }); });

function run(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 15_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function serve(args: string[]): Promise<{ p: ChildProcess; listening: Record<string, unknown>; out: () => string }> {
  const p = spawn(process.execPath, [CLI, 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  procs.push(p);
  let out = '';
  return new Promise((res, rej) => {
    const t = setTimeout(() => rej(new Error(`no listening line:\n${out}`)), 10_000);
    const onData = (d: Buffer): void => {
      out += String(d);
      for (const line of out.split('\n')) {
        try { const j = JSON.parse(line); if (j.msg === 'listening') { clearTimeout(t); res({ p, listening: j, out: () => out }); return; } } catch { /* partial */ }
      }
    };
    // logs go to stderr (src/common/log.ts); stdout stays for program output
    p.stdout!.on('data', onData);
    p.stderr!.on('data', onData);
    p.once('exit', (c) => { clearTimeout(t); rej(new Error(`exited ${c}:\n${out}`)); });
  });
}

describe('mpyc-relay CLI', () => {
  it('requires a built dist/', () => {
    expect(existsSync(CLI), `${CLI} missing: run npx tsc -p . (npm test builds first)`).toBe(true);
  });

  it('--help explains the commands and every serve flag', () => {
    const r = run(['--help']);
    expect(r.code).toBe(0);
    for (const f of ['keygen', 'serve', '--key', '--udp', '--http', '--allow', '--rate', '--burst', '--max-payload', '--max-agents', '--keepalive', '--expiry', '--log-level', '--log-format', '--public-host',
      '--tls-cert', '--tls-key', '--workers', '--source-rate', '--dest-rate', '--global-rate', '--handshake-rate', '--handshake-rate-global', '--stun-rate',
      '--max-sources', '--max-connections', '--max-connections-per-source', '--headers-timeout', '--idle-timeout', '--ws-register-timeout',
      '--config', '--check', 'MPYC_RELAY_', 'Precedence: flags > environment > config file > defaults', 'Exit codes']) expect(r.stdout).toContain(f);
    expect(run(['serve', '--help']).stdout).toBe(run(['help', 'serve']).stdout);
    const version = run(['--version']);
    expect([version.code, version.stdout]).toEqual([0, `mpyc-relay ${JSON.parse(readFileSync(join(import.meta.dirname, '../../package.json'), 'utf8')).version}\n`]);
    const bare = run([]);
    expect(bare.code).toBe(2); // no command: the help, as a usage error
    expect(bare.stdout).toContain('Usage:');
    const unknown = run(['srve']);
    expect([unknown.code, unknown.stderr]).toEqual([2, 'mpyc-relay: unknown command "srve" (commands: keygen, pubkey, serve)\nTry: mpyc-relay --help\n']);
  });

  it('keygen writes a 0600 key, refuses to overwrite, pubkey matches', () => {
    const f = join(dir, 'k1');
    const r = run(['keygen', '--out', f]);
    expect(r.code).toBe(0);
    const pub = r.stdout.trim();
    // stdout: the key alone (scripts read it); stderr: what it is
    expect(pub).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    expect(r.stderr).toMatch(/private key written to .*k1 \(mode 0600\); the relay's public key/);
    const bare = run(['keygen']);
    expect(bare.stdout.trim()).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    expect(bare.stderr).toMatch(/PRIVATE key below/);
    expect(run(['pubkey', '--key', f]).stdout.trim()).toBe(pub);
    const again = run(['keygen', '--out', f]);
    expect(again.code).toBe(3); // an unusable key file (EXIT.BAD_FILE)
    expect(again.stderr).toMatch(/already exists/);
  });

  it('clear errors: unknown flag (2), bad address (2), missing key (3), world-readable key (3)', () => {
    const bogus = run(['serve', '--bogus']);
    expect(bogus.code).toBe(2);
    expect(bogus.stderr).toMatch(/^mpyc-relay: unknown option --bogus\nUsage: mpyc-relay serve --key FILE \[options\]\nTry: mpyc-relay serve --help\n$/);
    const bad = run(['serve', '--key', join(dir, 'none'), '--udp', 'nope']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--udp: expected HOST:PORT/);
    const missing = run(['serve', '--key', join(dir, 'none'), '--udp', '127.0.0.1:0', '--http', 'off']);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toMatch(/none: cannot read key file \(ENOENT\); create one with: mpyc-relay keygen --out /);
    const f = join(dir, 'k2');
    run(['keygen', '--out', f]);
    chmodSync(f, 0o644);
    const open = run(['serve', '--key', f, '--udp', '127.0.0.1:0', '--http', 'off']);
    expect(open.code).toBe(3);
    expect(open.stderr).toMatch(/chmod 600/);
  });

  it('serve prints the relay address, agents register, SIGTERM sends RESTARTING and exits 0', async () => {
    const f = join(dir, 'k3');
    const pub = run(['keygen', '--out', f]).stdout.trim();
    const allow = join(dir, 'allow');
    const agentKey = generateKeyPair();
    writeFileSync(allow, `# test\n${PeerKey.fromBytes(agentKey.publicKey).text}\n`);
    const { p, listening, out } = await serve(['--key', f, '--udp', '127.0.0.1:0', '--http', '127.0.0.1:0', '--allow', allow, '--log-level', 'info', '--log-format', 'json']);
    const udpPort = listening.udpPort as number;
    expect(listening.relayAddress).toBe(`${pub}@127.0.0.1:${udpPort}/${listening.httpPort as number}`);
    // port in use
    const clash = run(['serve', '--key', f, '--udp', `127.0.0.1:${udpPort}`, '--http', 'off']);
    expect(clash.code).toBe(1); // a failure at run time, not a usage error
    expect(clash.stderr).toContain(`mpyc-relay: UDP port ${udpPort} in use (127.0.0.1:${udpPort}): another relay running? choose --udp HOST:PORT (now from --udp)\n`);

    const sock = dgram.createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    const client = new RelayClient({ relayKey: pub, keyPair: agentKey, transport: 'udp', sendUdp: (b) => sock.send(b, udpPort, '127.0.0.1') });
    sock.on('message', (m) => client.handleDatagram(m));
    const states: string[] = [];
    client.on('state', (s) => states.push(s));
    try {
      client.start();
      await waitFor(() => client.state === 'registered', 5000, 'registration with the CLI relay');
      // registrations are logged at info, with the key
      await waitFor(() => out().includes('"msg":"agent registered"') && out().includes(PeerKey.fromBytes(agentKey.publicKey).text), 2000, 'registration log line');
      const exited = new Promise<number | null>((r) => p.once('exit', (c) => r(c)));
      p.kill('SIGTERM');
      expect(await exited).toBe(0);
      await waitFor(() => client.state === 'registering', 2000, 'client saw RESTARTING');
    } finally { client.close(); sock.close(); }
  });

  it('a wildcard bind without --public-host warns and prints no address; --public-host builds it', async () => {
    const f = join(dir, 'k4');
    const pub = run(['keygen', '--out', f]).stdout.trim();
    const a = await serve(['--key', f, '--udp', '0.0.0.0:0', '--http', 'off', '--log-format', 'json']);
    expect(a.listening.relayAddress).toBeNull();
    await waitFor(() => /"level":"warn".*wildcard address 0\.0\.0\.0: pass --public-host/.test(a.out()), 2000, 'wildcard warning');
    expect(a.out()).toContain(`${pub}@PUBLIC-HOST:${a.listening.udpPort as number}`);
    a.p.kill('SIGTERM');
    const b = await serve(['--key', f, '--udp', '0.0.0.0:0', '--http', 'off', '--public-host', 'relay.example.org', '--log-format', 'json']);
    expect(b.listening.relayAddress).toBe(`${pub}@relay.example.org:${b.listening.udpPort as number}`);
    expect(b.out()).not.toMatch(/wildcard/);
    b.p.kill('SIGTERM');
  });

  it('TLS flags: https and wss on the HTTP port; a lone --tls-cert is a usage error', async () => {
    const fx = join(import.meta.dirname, 'fixtures');
    const f = join(dir, 'k5');
    run(['keygen', '--out', f]);
    expect(run(['serve', '--key', f, '--tls-cert', join(fx, 'tls-cert.pem')]).stderr).toMatch(/--tls-cert and --tls-key go together/);
    const { listening } = await serve(['--key', f, '--udp', '127.0.0.1:0', '--http', '127.0.0.1:0', '--tls-cert', join(fx, 'tls-cert.pem'), '--tls-key', join(fx, 'tls-key.pem'), '--log-format', 'json']);
    expect(listening.tls).toBe(true);
    expect(listening.wsUrl).toBe(`wss://127.0.0.1:${listening.httpPort as number}/relay`);
  });
});
