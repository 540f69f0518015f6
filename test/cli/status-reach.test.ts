// The reach fields of `mpyc-agent status` and `ping` from real agents (built binaries,
// loopback): two relays, so each agent compares two STUN answers and learns its mapping
// (on loopback both see the same address: endpoint-independent); a direct path between
// the two found by LAN; each peer's report of its NAT; no router mapping (every relay is
// on this host: nothing is asked of a router) and no birthday probing. The fields that
// need a NAT: status-format.test.ts (formatter) and portmap-lab.test.ts (a real router).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freeBases } from '../../src/common/ports.js';
import { queryStatus } from '../../src/agent/control.js';
import type { AgentStatus } from '../../src/agent/types.js';
import { Daemon, makeSession, relayAddressOf, runCli, startRelayProcess, type RelayProcess, until } from './helpers.js';

let dir: string;
const relays: RelayProcess[] = [];
const agents: Daemon[] = [];
const controls: string[] = [];

/** both agents direct to each other, each knowing its own and its peer's IPv4 mapping */
const settled = (st: AgentStatus): boolean =>
  st.mapping?.v4 !== 'unknown' && st.peers.every((p) => p.state === 'direct' && p.mapping?.v4 !== 'unknown');

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cli-reach-'));
  relays.push(...(await Promise.all([startRelayProcess(dir, 'relay0'), startRelayProcess(dir, 'relay1')])));
  const { session, keys } = makeSession(dir, 'reach', relays.map(relayAddressOf), 2, ['alice', 'bob']);
  const bases = await freeBases(2, 2);
  for (let i = 0; i < 2; i++) {
    controls.push(join(dir, `agent${i}.sock`));
    agents.push(Daemon.agent(['up', session, '--key', keys[i]!, '--bind', '127.0.0.1', '--local-base', String(bases[i]), '--control', controls[i]!]));
  }
  await Promise.all(agents.map((a) => a.record('ready')));
  await Promise.all(controls.map((c, i) => until(`agent ${i} direct, mappings known`, 20_000, async () => (settled(await queryStatus(c)) ? true : undefined))));
}, 60_000);

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await Promise.all(relays.map((r) => r.daemon.stop()));
  rmSync(dir, { recursive: true, force: true });
});

describe('status and ping: mechanism, NAT mapping, port mapping (loopback pair, two relays)', () => {
  it('--json: the direct path found by LAN, this host\'s mapping and the peer\'s, no port mapping, no birthday probing', async () => {
    const r = await runCli(['status', '--json', '--control', controls[0]!]);
    expect(r.code, r.stderr).toBe(0);
    const st = JSON.parse(r.stdout) as AgentStatus;
    expect(st.relays?.map((x) => x.registered)).toEqual([true, true]);
    // two STUN endpoints saw one address: endpoint-independent; no IPv6 socket (--bind 127.0.0.1): unknown
    expect(st.mapping).toEqual({ v4: 'independent', v6: 'unknown' });
    expect(st.portMapping).toBeUndefined();
    const bob = st.peers[0]!;
    expect(bob.path).toMatchObject({ kind: 'direct', lan: true, family: 4, mechanism: 'lan' });
    expect(bob.mapping).toEqual({ v4: 'independent', v6: 'unknown' });
    expect(bob.birthday).toBeUndefined();
  });

  it('the table: the nat line, FOUND BY LAN, and the peer\'s NAT as it reports it', async () => {
    const r = await runCli(['status', '--control', controls[1]!]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^nat {2}mapping IPv4 endpoint-independent, IPv6 unknown {2}port mapping none$/m);
    const lines = r.stdout.split('\n');
    const header = lines.find((l) => l.startsWith('PEER ') && l.includes('FOUND BY'))!;
    const row = lines.find((l) => l.startsWith('0 alice '))!;
    // the cell under FOUND BY
    expect(row.slice(header.indexOf('FOUND BY')).split(/ {2,}/)[0]).toBe('LAN');
    expect(row.slice(header.indexOf('PATH'))).toMatch(/^direct 127\.0\.0\.1:\d+ \(LAN, IPv4, (interface|STUN|observed)\) /);
    expect(r.stdout).toMatch(/^PEER +NAT \(AS THE PEER REPORTS IT\) +BIRTHDAY PROBING\n0 alice +IPv4 endpoint-independent +-$/m);
  });

  it('ping names the mechanism of the path each answer took', async () => {
    const r = await runCli(['ping', 'bob', '--count', '2', '--interval', '0.1', '--control', controls[0]!]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    for (const l of lines.slice(0, 2)) expect(l).toMatch(/^pong from party 1 \(bob\) via direct 127\.0\.0\.1:\d+ \(LAN, IPv4, \w+\) in \S+ (µs|ms), found by LAN$/);
    expect(lines[3]).toMatch(/^last answer via direct 127\.0\.0\.1:\d+ \(LAN, IPv4, \w+\), found by LAN$/);
    const json = JSON.parse((await runCli(['ping', '1', '--count', '1', '--json', '--control', controls[0]!])).stdout) as { samples: { path: { mechanism?: string } }[] };
    expect(json.samples[0]!.path.mechanism).toBe('lan');
  });
});
