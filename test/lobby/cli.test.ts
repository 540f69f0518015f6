// The invite flow as users run it: the built mpyc-relay and mpyc-agent binaries (dist/),
// a real relay process, `invite create`, every party's `join --up`, then MPyC-pattern
// traffic through the agents the joins started. Also the errors a user meets: no key
// without consent, a full or expired lobby, a wrong secret, a tampering relay, lobby caps.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join as pathJoin } from 'node:path';
import { createInterface } from 'node:readline';
import { spawnNode, stop, type Proc } from '../../bench/lib/proc.js';
import { freeBases } from '../../src/common/ports.js';
import { runParty } from '../../src/tools/mpyc-sim.js';
import { decodeInvite, encodeInvite } from '../../src/lobby/invite.js';
import { LobbyKeys, KIND_ENTRY } from '../../src/lobby/keys.js';
import { OP_READ, STATUS, decodeRequest, decodeResponse, encodeResponse } from '../../src/lobby/wire.js';
import { PeerKey } from '../../src/common/peer-key.js';
import { generateKeyPair } from '../../src/noise/index.js';
import { encodeEntry } from '../../src/lobby/records.js';

const dist = pathJoin(import.meta.dirname, '../../dist/src');
const agentCli = pathJoin(dist, 'agent/cli.js');
const relayCli = pathJoin(dist, 'relay/cli.js');
const dir = mkdtempSync(pathJoin(tmpdir(), 'lobby-cli-'));
const children: ChildProcess[] = [];
const daemons: Proc[] = [];

interface Run { code: number; stdout: string; stderr: string }
function agent(args: string[], cwd = dir, timeoutMs = 30_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [agentCli, ...args], { cwd, timeout: timeoutMs }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

async function startRelay(name: string, flags: string[] = []): Promise<{ proc: Proc; address: string; httpPort: number }> {
  const key = pathJoin(dir, `${name}.key`);
  await new Promise<void>((r) => execFile(process.execPath, [relayCli, 'keygen', '--out', key], () => r()));
  const proc = spawnNode(name, [relayCli, 'serve', '--key', key, '--udp', '127.0.0.1:0', '--http', '127.0.0.1:0', ...flags]);
  daemons.push(proc);
  const { rec } = await proc.waitFor((r) => r.msg === 'listening', 15_000, 'relay listening');
  return { proc, address: rec.relayAddress as string, httpPort: rec.httpPort as number };
}

async function createInvite(address: string, parties: number, extra: string[] = []): Promise<string> {
  const r = await agent(['invite', 'create', '--relay', address, '--parties', String(parties), '--json', ...extra]);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { invite: string }).invite;
}

/** `join INVITE ... --up -- UP-OPTIONS`: resolves when the agent it started logs "ready". */
function joinUp(invite: string, name: string, partyDir: string, localBase: number): Promise<{ child: ChildProcess; stdout: () => string }> {
  mkdirSync(partyDir, { recursive: true });
  const child = spawn(process.execPath, [agentCli, 'join', invite, '--name', name, '--create-key', '--key', 'party.key', '--out', 'session.json', '--up',
    '--', '--bind', '127.0.0.1', '--local-base', String(localBase), '--control', pathJoin(partyDir, 'agent.sock'), '--log-level', 'info'],
  { cwd: partyDir, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => { out += String(d); });
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${name}: no ready line\n${err.slice(-2000)}`)), 60_000);
    child.once('exit', (c) => { clearTimeout(t); reject(new Error(`${name}: exited ${c}\n${err.slice(-2000)}`)); });
    createInterface({ input: child.stderr! }).on('line', (l) => {
      err += `${l}\n`;
      if (l.startsWith('{') && (JSON.parse(l) as { msg?: string }).msg === 'ready') { clearTimeout(t); resolve({ child, stdout: () => out }); }
    });
  });
}

const fingerprintOf = (stdout: string): string => /Fingerprint: ([A-Z2-7-]+)/.exec(stdout)?.[1] ?? 'none';

let relay: Awaited<ReturnType<typeof startRelay>>;
beforeAll(async () => { relay = await startRelay('relay', ['--lobbies-per-source', '50']); });
afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await Promise.all(daemons.map((d) => stop(d.child)));
  rmSync(dir, { recursive: true, force: true });
});

describe('mpyc-agent invite create / join (real binaries, real relay)', () => {
  for (const m of [3, 5]) {
    it(`${m} parties join with --up: byte-identical session files, one fingerprint, then MPyC-pattern traffic through the agents`, async () => {
      const invite = await createInvite(relay.address, m, ['--name', `e2e-${m}`]);
      const bases = await freeBases(m, m);
      const parties = await Promise.all(bases.map((b, i) => joinUp(invite, `p${i}`, pathJoin(dir, `m${m}-p${i}`), b)));
      try {
        const files = parties.map((_, i) => readFileSync(pathJoin(dir, `m${m}-p${i}`, 'session.json')));
        for (const f of files) expect(f.equals(files[0]!)).toBe(true);
        const prints = parties.map((p) => fingerprintOf(p.stdout()));
        expect(new Set(prints).size).toBe(1);
        expect(prints[0]).toMatch(/^[A-Z2-7]{4}(-[A-Z2-7]{4}){3}$/);
        // which index each joiner got (join order is each member's own clock)
        const pids = parties.map((p) => Number(/party (\d+) of \d+; run MPyC/.exec(p.stdout())?.[1]));
        expect([...pids].sort()).toEqual([...Array(m).keys()]);
        const session = JSON.parse(files[0]!.toString()) as { parties: { name: string }[] };
        pids.forEach((pid, i) => expect(session.parties[pid]!.name).toBe(`p${i}`));
        const stats = await Promise.all(pids.map((pid, i) => runParty({
          m, pid, basePort: bases[i]!, host: 'localhost', rounds: 5, bulkBytes: 20_000, seed: `lobby${m}`, timeoutMs: 45_000,
        })));
        for (const s of stats) {
          expect(s.messagesVerified).toBe((m - 1) * (5 + 2));
          expect(s.unidentifiedConnections).toBe(0);
        }
      } finally {
        await Promise.all(parties.map((p) => new Promise<void>((r) => { if (p.child.exitCode !== null) { r(); return; } p.child.once('exit', () => r()); p.child.kill('SIGTERM'); })));
      }
      if (m !== 3) return;
      // the same party joining again: same seat, same file ("unchanged"), same fingerprint
      const again = await agent(['join', invite, '--name', 'p0', '--key', 'party.key', '--out', 'session.json'], pathJoin(dir, 'm3-p0'));
      expect(again.code, again.stderr).toBe(0);
      expect(again.stdout).toMatch(/session\.json: unchanged/);
      expect(again.stderr).toMatch(/already joined as "p0"/);
      expect(fingerprintOf(again.stdout)).toBe(fingerprintOf(parties[0]!.stdout()));
      // someone else, with the lobby full
      const late = await agent(['join', invite, '--name', 'zoe', '--create-key', '--key', 'zoe.key', '--out', 'zoe.json']);
      expect(late.code).toBe(1);
      expect(late.stderr).toMatch(/the lobby is full: 3 of 3 have joined \(p\d, p\d, p\d\)/);
      // an existing, different session file is not overwritten without --force
      const otherDir = pathJoin(dir, 'm3-p1');
      writeFileSync(pathJoin(otherDir, 'other.json'), readFileSync(pathJoin(dir, 'm3-p0', 'session.json'), 'utf8').replace('"basePort": 11365', '"basePort": 11366'));
      const clash = await agent(['join', invite, '--name', 'p1', '--key', 'party.key', '--out', 'other.json'], otherDir);
      expect(clash.code).toBe(1);
      expect(clash.stderr).toMatch(/holds a different session; not overwritten/);
      const forced = await agent(['join', invite, '--name', 'p1', '--key', 'party.key', '--out', 'other.json', '--force'], otherDir);
      expect(forced.code, forced.stderr).toBe(0);
      expect(readFileSync(pathJoin(otherDir, 'other.json')).equals(readFileSync(pathJoin(otherDir, 'session.json')))).toBe(true);
    }, 120_000);
  }

  it('no key file: join says how to make one and creates none without --create-key', async () => {
    const invite = await createInvite(relay.address, 2);
    const r = await agent(['join', invite, '--key', 'nokey.key']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no key file at nokey\.key: create one with `mpyc-agent keygen --out nokey\.key`.*--create-key/);
    expect(existsSync(pathJoin(dir, 'nokey.key'))).toBe(false);
    const damaged = await agent(['join', invite.slice(0, -2), '--key', 'nokey.key']);
    expect(damaged.code).toBe(2);
    expect(damaged.stderr).toMatch(/damaged/);
  });

  it('an invite with a valid check but the wrong secret is rejected', async () => {
    const invite = await createInvite(relay.address, 2);
    const d = decodeInvite(invite);
    if (!d.ok) throw new Error(d.error);
    d.value.secret[0]! ^= 1;
    const r = await agent(['join', encodeInvite(d.value), '--name', 'mallory', '--create-key', '--key', 'mallory.key', '--out', 'mallory.json']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/secret does not match the lobby/);
    expect(existsSync(pathJoin(dir, 'mallory.json'))).toBe(false);
  });

  it('a tampering relay (a proxy that swaps a member\'s entry for its own) is detected and nothing is written', async () => {
    // the proxy forwards to the real relay and replaces the second entry of every view by a
    // box it sealed for another secret (it never learns the invite's)
    const fakeKeys = new LobbyKeys(PeerKey.fromBytes(generateKeyPair().publicKey), new Uint8Array(16), new Uint8Array(16).fill(1));
    const fakePair = generateKeyPair();
    const proxy: Server = createServer((req, res) => {
      const body: Buffer[] = [];
      req.on('data', (c: Buffer) => body.push(c));
      req.on('end', () => {
        const up = request({ host: '127.0.0.1', port: relay.httpPort, path: req.url, method: 'POST', headers: { 'content-type': 'application/octet-stream' } }, (ur) => {
          const chunks: Buffer[] = [];
          ur.on('data', (c: Buffer) => chunks.push(c));
          ur.on('end', () => {
            const q = decodeRequest(Buffer.concat(body));
            const r = decodeResponse(Buffer.concat(chunks));
            const second = q?.op === OP_READ && r?.status === STATUS.OK ? r.view.entries[1 - q.fromEntry] : undefined;
            if (second) second.box = fakeKeys.seal(KIND_ENTRY, second.tag, encodeEntry({ publicKey: fakePair.publicKey, joinedAt: 1, name: 'mallory' }));
            const out = r ? encodeResponse(r) : Buffer.concat(chunks);
            res.writeHead(ur.statusCode ?? 502, { 'content-type': 'application/octet-stream', 'content-length': out.length }).end(out);
          });
        });
        up.end(Buffer.concat(body));
      });
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
    try {
      const proxied = relay.address.replace(/\/\d+$/, `/${(proxy.address() as { port: number }).port}`);
      const invite = await createInvite(proxied, 2);
      const a = agent(['join', invite, '--name', 'alice', '--create-key', '--key', 'ta.key', '--out', 'ta.json', '--timeout', '5']);
      await new Promise((r) => setTimeout(r, 500));
      const b = agent(['join', invite, '--name', 'bob', '--create-key', '--key', 'tb.key', '--out', 'tb.json', '--timeout', '5']);
      const [ra, rb] = await Promise.all([a, b]);
      expect(ra.code).toBe(1);
      expect(rb.code).toBe(1);
      expect(ra.stderr).toMatch(/1 record\(s\) in the lobby do not authenticate/);
      expect(ra.stderr).toMatch(/gave up waiting for all members to join/);
      expect(rb.stderr).toMatch(/does not show it: it is dropping records/);
      expect(existsSync(pathJoin(dir, 'ta.json')) || existsSync(pathJoin(dir, 'tb.json'))).toBe(false);
    } finally {
      await new Promise<void>((r) => proxy.close(() => r()));
    }
  }, 30_000);

  it('lobby limits: expiry, lobbies per source, and the lobby gauges in /metrics', async () => {
    const small = await startRelay('small-relay', ['--lobby-ttl', '1', '--lobbies-per-source', '1']);
    const invite = await createInvite(small.address, 2);
    const capped = await agent(['invite', 'create', '--relay', small.address, '--parties', '2']);
    expect(capped.code).toBe(1);
    expect(capped.stderr).toMatch(/as many open lobbies from your address as it allows/);
    const metrics = await (await fetch(`http://127.0.0.1:${small.httpPort}/metrics`)).text();
    expect(metrics).toMatch(/^mpyc_relay_lobbies 1$/m);
    expect(metrics).toMatch(/^mpyc_relay_lobbies_created_total 1$/m);
    expect(metrics).toMatch(/^mpyc_relay_lobby_requests_total\{op="create",status="source_limit"\} 1$/m);
    await new Promise((r) => setTimeout(r, 1500));
    const late = await agent(['join', invite, '--name', 'x', '--create-key', '--key', 'x.key', '--out', 'x.json']);
    expect(late.code).toBe(1);
    expect(late.stderr).toMatch(/the lobby has expired/);
    const after = await (await fetch(`http://127.0.0.1:${small.httpPort}/metrics`)).text();
    expect(after).toMatch(/^mpyc_relay_lobbies 0$/m);
    expect(after).toMatch(/^mpyc_relay_lobbies_expired_total 1$/m);
    // the expired lobby freed its creator's slot
    expect((await agent(['invite', 'create', '--relay', small.address, '--parties', '2'])).code).toBe(0);
    const off = await startRelay('no-lobby-relay', ['--lobbies', '0']);
    const refused = await agent(['invite', 'create', '--relay', off.address, '--parties', '2']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/does not host lobbies/);
  }, 30_000);

  it('--help of both binaries lists the invite commands and the lobby flags', async () => {
    const top = await agent(['--help']);
    expect(top.stdout).toMatch(/mpyc-agent invite create/);
    expect(top.stdout).toMatch(/mpyc-agent join INVITE/);
    const joinHelp = await agent(['join', '--help']);
    for (const f of ['--name', '--key', '--create-key', '--out', '--force', '--timeout', '--up']) expect(joinHelp.stdout).toContain(f);
    const relayHelp = await new Promise<string>((r) => execFile(process.execPath, [relayCli, '--help'], (_e, out) => r(out)));
    for (const f of ['--lobbies', '--lobbies-per-source', '--lobby-parties', '--lobby-ttl']) expect(relayHelp).toContain(f);
  });
});
