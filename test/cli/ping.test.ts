// `mpyc-agent ping` against real agents and a real relay (built binaries, loopback):
// per-sample RTT and path (direct with how it was found, relay with which one), the summary,
// names, --json, bad parties, a peer that goes away (no answer, exit 1), and the flags that
// shape what happens then: --peer-offline, --offline-close, --bind6.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freeBases } from '../../src/common/ports.js';
import { queryStatus } from '../../src/agent/control.js';
import type { AgentStatus, PeerStatus } from '../../src/agent/types.js';
import { Daemon, makeSession, relayAddressOf, runCli, startRelayProcess, type RelayProcess, until } from './helpers.js';

const NAMES = ['alice', 'bob', 'carol'];
const SOURCE_TEXT: Record<string, string> = { interface: 'interface', stun: 'STUN', portmap: 'port mapping', observed: 'observed' };

let dir: string;
let relay: RelayProcess;
const agents: Daemon[] = [];
const controls: string[] = [];
let bases: number[];

const peerOf = (st: AgentStatus, i: number): PeerStatus => st.peers.find((p) => p.index === i)!;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cli-ping-'));
  relay = await startRelayProcess(dir, 'relay');
  const { session, keys } = makeSession(dir, 'ping', relayAddressOf(relay), 3, NAMES);
  bases = await freeBases(3, 3);
  const extra = [
    ['--peer-offline', '10', '--offline-close', '0'],
    [],
    ['--relay-only', '--bind6', '::1'],
  ];
  for (let i = 0; i < 3; i++) {
    controls.push(join(dir, `agent${i}.sock`));
    agents.push(Daemon.agent(['up', session, '--key', keys[i]!, '--bind', '127.0.0.1', '--local-base', String(bases[i]), '--control', controls[i]!, '--log-level', 'info', ...extra[i]!]));
  }
  await Promise.all(agents.map((a) => a.record('ready')));
  // 0 ↔ 1 direct (loopback), 0 ↔ 2 through the relay (2 is relay-only)
  await until('agent 0 direct to party 1 and connected to party 2', 20_000, async () => {
    const st = await queryStatus(controls[0]!);
    return peerOf(st, 1).state === 'direct' && peerOf(st, 2).state === 'relay' ? st : undefined;
  });
}, 60_000);

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await relay?.daemon.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('mpyc-agent ping', () => {
  it('prints each answer with its RTT and the direct path with how it was found, then a summary; exit 0', async () => {
    const r = await runCli(['ping', '1', '--count', '3', '--interval', '0.2', '--control', controls[0]!]);
    expect(r.code, r.stderr).toBe(0);
    const st = await queryStatus(controls[0]!);
    const path = peerOf(st, 1).path;
    expect(path?.kind).toBe('direct');
    if (path?.kind !== 'direct') return;
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(5);
    // the sample names how the address was found and which mechanism found the path, as status does (the core's ping does not know)
    expect(path.mechanism).toBe('lan');
    const via = `direct ${path.address} (LAN, IPv4, ${SOURCE_TEXT[path.source!]})`;
    for (const l of lines.slice(0, 3)) expect(l).toMatch(new RegExp(`^pong from party 1 \\(bob\\) via ${via.replace(/[.()]/g, '\\$&')} in \\d+(\\.\\d)? (µs|ms), found by LAN$`));
    expect(lines[3]).toMatch(/^--- party 1 \(bob\): 3 sent, 3 answered, 0% lost; rtt min\/avg\/max \S+ (µs|ms) \/ \S+ (µs|ms) \/ \S+ (µs|ms)$/);
    expect(lines[4]).toBe(`last answer via ${via}, found by LAN`);
  });

  it('finds a party by name; --json has every sample (RTT to 0.01 ms) and the summary; a relayed peer answers via the relay', async () => {
    const r = await runCli(['ping', 'carol', '--count', '2', '--interval', '0.1', '--json', '--control', controls[0]!]);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { party: number; name: string; samples: { seq: number; rttMs?: number; path: { kind: string; relay?: string; transport?: string } }[]; sent: number; answered: number; lossPct: number; rttMinMs: number; rttMaxMs: number };
    expect(j).toMatchObject({ party: 2, name: 'carol', sent: 2, answered: 2, lossPct: 0 });
    expect(j.samples.map((s) => s.seq)).toEqual([0, 1]);
    for (const s of j.samples) {
      expect(s.path).toEqual({ kind: 'relay', relay: relay.address, transport: 'udp' });
      expect(s.rttMs).toBeGreaterThan(0);
      expect(String(s.rttMs)).toMatch(/^\d+(\.\d{1,2})?$/);
    }
    expect(j.rttMinMs).toBeLessThanOrEqual(j.rttMaxMs);
    const human = await runCli(['ping', '2', '--count', '1', '--control', controls[0]!]);
    expect(human.stdout).toMatch(new RegExp(`^pong from party 2 \\(carol\\) via relay udp ${relay.publicKey.slice(0, 8).replace(/[+/]/g, '\\$&')}…@127\\.0\\.0\\.1:${relay.udpPort}/${relay.httpPort} in `));
    expect(human.stdout).toMatch(/last answer via relay udp .* \(no direct path in use\)$/m);
  });

  it('a party that is not a peer: exit 2 with the peers listed; this agent itself; no agent: exit 1', async () => {
    const unknown = await runCli(['ping', 'dave', '--control', controls[0]!]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^mpyc-agent: no party "dave" among this agent's peers \(1 \(bob\), 2 \(carol\)\)\nUsage: mpyc-agent ping/);
    const self = await runCli(['ping', '0', '--control', controls[0]!]);
    expect(self.code).toBe(2);
    expect(self.stderr).toMatch(/party 0 is this agent itself/);
    const none = await runCli(['ping', '1', '--control', join(dir, 'none.sock')]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/cannot connect \(ENOENT\) \(is the agent running\?/);
  });

  it('--bind6: the relay-only agent has its IPv6 socket on ::1, the others (bound to 127.0.0.1) none', async () => {
    expect((await queryStatus(controls[2]!)).udpPort6).toBeGreaterThan(0);
    expect((await queryStatus(controls[0]!)).udpPort6).toBeUndefined();
    const human = await runCli(['status', '--control', controls[2]!]);
    expect(human.stdout).toMatch(/udp port \d+, IPv6 \d+$/m);
    // one relay is one STUN endpoint: neither mapping can be told
    expect(human.stdout).toMatch(/^nat {2}mapping IPv4 unknown, IPv6 unknown {2}port mapping none$/m);
  });

  it('a peer that stops: no answer (exit 1); offline after --peer-offline 10 s, not the default 15 s; its local connection closed at once (--offline-close 0)', async () => {
    // a local MPyC connection on agent 0 towards party 1
    const local: Socket = connect({ host: '127.0.0.1', port: bases[0]! + 1 });
    await new Promise<void>((r, j) => { local.once('connect', () => r()); local.once('error', j); });
    const closed = new Promise<number>((r) => local.once('close', () => r(Date.now())));
    local.on('error', () => undefined);
    await until('the stream open on agent 0', 5000, async () => (peerOf(await queryStatus(controls[0]!), 1).streams === 1 ? true : undefined));

    // an answer just before: the peer was heard now, so offline comes --peer-offline after the kill
    expect((await runCli(['ping', '1', '--count', '1', '--control', controls[0]!])).code).toBe(0);
    await agents[1]!.stop(); // SIGKILL: the peer vanishes without a word
    const killedAt = Date.now();
    const r = await runCli(['ping', 'bob', '--count', '1', '--control', controls[0]!]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^no answer from party 1 \(bob\) within 2 s \(sent via direct 127\.0\.0\.1:\d+ .*\)\n--- party 1 \(bob\): 1 sent, 0 answered, 100% lost\n$/);

    const offline = await until('party 1 offline', 20_000, async () => (peerOf(await queryStatus(controls[0]!), 1).liveness === 'offline' ? Date.now() : undefined));
    // 10 s of silence; the default would take 15 s
    expect(offline - killedAt).toBeGreaterThanOrEqual(9_000);
    expect(offline - killedAt).toBeLessThan(13_500);
    const human = await runCli(['status', '--control', controls[0]!]);
    expect(human.stdout).toMatch(/^1 bob +\S+ +offline \d+s /m);
    const closedAt = await closed;
    expect(closedAt - offline).toBeLessThan(3_000);
  }, 40_000);
});
