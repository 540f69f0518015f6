// A relay whose HTTP port speaks TLS, named in the session file as KEY@host:udp/https:PORT,
// reached by two agents on WebSocket only (a network that lets only HTTPS out): the real
// binaries, the relay's test certificate (test/relay/fixtures, localhost / 127.0.0.1) made
// trusted by NODE_EXTRA_CA_CERTS as a user would for a private CA.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freeBases } from '../../src/common/ports.js';
import { queryStatus } from '../../src/agent/control.js';
import { formatRelayAddress, parseRelayAddress, parseSessionFile } from '../../src/agent/session-file.js';
import { decodeInvite } from '../../src/lobby/invite.js';
import type { AgentStatus } from '../../src/agent/types.js';
import { Daemon, makeSession, runCli, startRelayProcess, type RelayProcess, until } from './helpers.js';

const FIXTURES = join(import.meta.dirname, '../relay/fixtures');
const CERT = join(FIXTURES, 'tls-cert.pem');

let dir: string;
let relay: RelayProcess;
const agents: Daemon[] = [];
const controls: string[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cli-wss-'));
  relay = await startRelayProcess(dir, 'relay', ['--tls-cert', CERT, '--tls-key', join(FIXTURES, 'tls-key.pem')]);
}, 30_000);

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await relay?.daemon.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('a TLS relay in the session file (/https:PORT)', () => {
  it('the relay prints its address with /https:PORT; two WebSocket-only agents reach it over wss:// and each other through it', async () => {
    expect(relay.address).toMatch(new RegExp(`:${relay.udpPort}/https:${relay.httpPort}$`));
    const parsed = parseRelayAddress(relay.address);
    expect(parsed.ok && parsed.value.tls).toBe(true);
    if (!parsed.ok) return;
    const { session, keys } = makeSession(dir, 'wss', parsed.value, 2, ['alice', 'bob']);
    const bases = await freeBases(2, 2);
    const env = { ...process.env, NODE_EXTRA_CA_CERTS: CERT };
    for (let i = 0; i < 2; i++) {
      controls.push(join(dir, `agent${i}.sock`));
      agents.push(Daemon.agent(['up', session, '--key', keys[i]!, '--bind', '127.0.0.1', '--local-base', String(bases[i]),
        '--control', controls[i]!, '--relay-transport', 'ws', '--relay-only', '--log-level', 'info'], env));
    }
    await Promise.all(agents.map((a) => a.record('ready')));
    const st = await until('both agents registered over WebSocket and the pair connected through the relay', 20_000, async () => {
      const all: AgentStatus[] = await Promise.all(controls.map((c) => queryStatus(c)));
      return all.every((s) => s.relays?.[0]?.registered && s.relays[0].transport === 'ws' && s.peers[0]!.state === 'relay') ? all : undefined;
    });
    expect(st[0]!.relays![0]!.address).toBe(relay.address);
    const ping = await runCli(['ping', '1', '--count', '2', '--interval', '0.1', '--json', '--control', controls[0]!]);
    expect(ping.code, ping.stderr).toBe(0);
    const j = JSON.parse(ping.stdout) as { answered: number; samples: { path: { kind: string; transport?: string } }[] };
    expect(j.answered).toBe(2);
    for (const s of j.samples) expect(s.path).toMatchObject({ kind: 'relay', transport: 'ws' });
  }, 60_000);

  it('an invite carries the TLS relay: create and join speak https to the lobby, the session file names /https:PORT', async () => {
    // without the CA the lobby request fails, and the error says how to trust a private CA
    const untrusted = await runCli(['invite', 'create', '--relay', relay.address, '--parties', '2']);
    expect(untrusted.code).toBe(1);
    expect(untrusted.stderr).toMatch(/https:\/\/127\.0\.0\.1:\d+\/lobby.*not trusted here.*NODE_EXTRA_CA_CERTS/);
    const env = { ...process.env, NODE_EXTRA_CA_CERTS: CERT };
    const created = await runCli(['invite', 'create', '--relay', relay.address, '--parties', '2', '--json'], { env });
    expect(created.code, created.stderr).toBe(0);
    const invite = (JSON.parse(created.stdout) as { invite: string }).invite;
    const decoded = decodeInvite(invite);
    expect(decoded.ok && decoded.value.relay.tls).toBe(true);
    const joins = await Promise.all(['alice', 'bob'].map((name) => runCli(['join', invite, '--name', name, '--create-key',
      '--key', join(dir, `${name}-inv.key`), '--out', join(dir, `${name}-inv.json`)], { env, timeoutMs: 30_000 })));
    for (const j of joins) expect(j.code, j.stderr).toBe(0);
    const files = ['alice', 'bob'].map((name) => readFileSync(join(dir, `${name}-inv.json`), 'utf8'));
    expect(files[1]).toBe(files[0]);
    const session = parseSessionFile(files[0]!, 'alice-inv.json');
    expect(session.relays[0]).toMatchObject({ tls: true, httpPort: relay.httpPort, udpPort: relay.udpPort });
    expect(formatRelayAddress(session.relays[0]!)).toBe(relay.address);
  }, 60_000);
});
