// The status view's reach fields (issue #14) for the cases a loopback pair cannot produce:
// a router's port mapping, birthday probing, an endpoint-dependent NAT, every mechanism
// name. formatStatus and the ping-cmd helpers directly, then the built `status` binary
// against a control socket served here with such a status. The fields a loopback pair
// does have are checked against real agents in status-reach.test.ts.
import { afterEach, describe, expect, it } from 'vitest';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startControlServer, type ControlServer } from '../../src/agent/control.js';
import { formatBirthday, formatMechanism, formatPortMapping, formatStatus, roundStatus } from '../../src/agent/status-format.js';
import { sampleLine, summaryLines, withStatusDetails } from '../../src/agent/ping-cmd.js';
import type { AgentStatus, PathInfo, PathMechanism, PeerStatus } from '../../src/agent/types.js';
import { runCli } from './helpers.js';

const KEY = Buffer.alloc(32, 7).toString('base64');
const RELAY = `${KEY}@relay.example.org:3478/8080`;

function peer(index: number, name: string, extra: Partial<PeerStatus>): PeerStatus {
  return { index, name, publicKey: KEY, state: 'direct', path: null, bytesSent: 10, bytesReceived: 20, streams: 0, ...extra };
}

type DirectPath = Extract<PathInfo, { kind: 'direct' }>;
const direct = (address: string, mechanism: PathMechanism | undefined, source: 'interface' | 'stun' | 'portmap' | 'observed' = 'observed'): DirectPath =>
  ({ kind: 'direct', address, lan: false, family: address.startsWith('[') ? 6 : 4, source, ...(mechanism ? { mechanism } : {}) });

/** A party behind a mapping router and an endpoint-independent NAT, with peers found by each mechanism. */
function natStatus(): AgentStatus {
  return {
    ownIndex: 0, publicKey: KEY, mpycCommand: 'python demo.py -M5 -I 0',
    relay: { address: RELAY, transport: 'udp', registered: true },
    relays: [{ address: RELAY, transport: 'udp', registered: true }],
    reflexiveAddress: '203.0.113.7:41641', reflexiveAddresses: ['203.0.113.7:41641'],
    mapping: { v4: 'independent', v6: 'unknown' },
    portMapping: { protocol: 'pcp', external: '203.0.113.7:41641', lifetimeSec: 600 },
    localAddresses: ['192.168.1.20:41641'], udpPort: 41641, uptimeMs: 125_000,
    peers: [
      peer(1, 'bob', { path: direct('198.51.100.4:40001', 'birthday'), mapping: { v4: 'dependent', v6: 'unknown' },
        birthday: { attempts: 2, probes: 2560, found: 1, running: false } }),
      peer(2, 'carol', { path: direct('198.51.100.5:41641', 'port-mapping', 'portmap'), mapping: { v4: 'unknown', v6: 'unknown' } }),
      peer(3, 'dave', { path: direct('[2001:db8::5]:41641', 'ipv6', 'interface'), mapping: { v4: 'dependent', v6: 'independent' },
        birthday: { attempts: 1, probes: 1, found: 0, running: true } }),
      peer(4, 'erin', { state: 'relay', path: { kind: 'relay', relay: RELAY, transport: 'ws' } }),
    ],
  };
}

/** The cell of `column` in the row of the peer `label`, in the table whose header has that column (cells are two or more spaces apart). */
function cell(text: string, column: string, label: string): string {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l.startsWith('PEER ') && l.split(/ {2,}/).includes(column));
  expect(start, `a table with a ${column} column`).toBeGreaterThanOrEqual(0);
  const header = lines[start]!.split(/ {2,}/);
  const rows = lines.slice(start + 1);
  const end = rows.indexOf('');
  const line = (end < 0 ? rows : rows.slice(0, end)).find((l) => l.startsWith(`${label} `));
  expect(line, `row ${label} under ${column}`).toBeDefined();
  return line!.split(/ {2,}/)[header.indexOf(column)]!;
}

describe('status view: NAT, port mapping, mechanism, birthday probing', () => {
  it('the nat line: this host\'s mapping per family and the router\'s mapping with its lease', () => {
    const text = formatStatus(natStatus());
    expect(text).toMatch(/^nat {2}mapping IPv4 endpoint-independent, IPv6 unknown {2}port mapping pcp 203\.0\.113\.7:41641, lease 10m00s$/m);
    const none = formatStatus({ ...natStatus(), portMapping: undefined, mapping: { v4: 'dependent', v6: 'independent' } });
    expect(none).toMatch(/^nat {2}mapping IPv4 endpoint-dependent, IPv6 endpoint-independent {2}port mapping none$/m);
    expect(formatPortMapping({ protocol: 'upnp', external: '203.0.113.7:1024', lifetimeSec: 0 })).toBe('upnp 203.0.113.7:1024, permanent');
    expect(formatPortMapping({ protocol: 'natpmp', external: '203.0.113.7:1024', lifetimeSec: 7200 })).toBe('natpmp 203.0.113.7:1024, lease 2h00m');
  });

  it('FOUND BY names the mechanism of every direct path, - for a relayed one', () => {
    const text = formatStatus(natStatus());
    expect(cell(text, 'FOUND BY', '1 bob')).toBe('birthday probing');
    expect(cell(text, 'PATH', '2 carol')).toBe('direct 198.51.100.5:41641 (IPv4, port mapping)');
    expect(cell(text, 'FOUND BY', '2 carol')).toBe('port mapping');
    expect(cell(text, 'FOUND BY', '3 dave')).toBe('IPv6');
    expect(cell(text, 'FOUND BY', '4 erin')).toBe('-');
    expect(cell(text, 'RTT', '4 erin')).toBe('-');
    const names = (['lan', 'stun', 'ipv6', 'port-mapping', 'birthday'] as const).map((m) => formatMechanism(direct('198.51.100.4:1', m)));
    expect(names).toEqual(['LAN', 'STUN', 'IPv6', 'port mapping', 'birthday probing']);
  });

  it('the second table: each peer\'s NAT as it reports it and the birthday probing towards it; peers with nothing to say left out', () => {
    const text = formatStatus(natStatus());
    const nat = 'NAT (AS THE PEER REPORTS IT)';
    expect(cell(text, nat, '1 bob')).toBe('IPv4 endpoint-dependent');
    expect(cell(text, 'BIRTHDAY PROBING', '1 bob')).toBe('2 attempts, 2560 probes sent, 1 path found');
    expect(cell(text, nat, '3 dave')).toBe('IPv4 endpoint-dependent, IPv6 endpoint-independent');
    expect(cell(text, 'BIRTHDAY PROBING', '3 dave')).toBe('1 attempt (1 under way), 1 probe sent, 0 paths found');
    const second = text.slice(text.indexOf('NAT (AS THE PEER REPORTS IT)'));
    expect(second).not.toMatch(/^2 carol/m); // knows neither family, never probed
    expect(second).not.toMatch(/^4 erin/m);
    expect(formatBirthday(undefined)).toBe('-');
  });

  it('a registered relay with something wrong (a key conflict) shows the reason beside "registered"', () => {
    const st = natStatus();
    st.relays = [{ address: RELAY, transport: 'udp', registered: true, reason: 'the same key runs in two agents (stop one)' }];
    const line = formatStatus(st).split('\n').find((l) => l.startsWith('relay '));
    expect(line).toMatch(/ udp +registered — the same key runs in two agents \(stop one\)$/);
    expect(formatStatus(natStatus()).split('\n').find((l) => l.startsWith('relay '))).toMatch(/ udp +registered$/);
  });

  it('an older agent\'s status (no mapping, mechanism or birthday): no nat line, FOUND BY -, no second table', () => {
    const old = natStatus();
    delete old.mapping;
    delete old.portMapping;
    old.peers = old.peers.map(({ mapping: _m, birthday: _b, ...p }) => ({ ...p, path: p.path?.kind === 'direct' ? { ...p.path, mechanism: undefined } : p.path }));
    const text = formatStatus(old);
    expect(text).not.toMatch(/^nat /m);
    expect(text).not.toContain('NAT (AS THE PEER REPORTS IT)');
    expect(cell(text, 'FOUND BY', '1 bob')).toBe('-');
  });

  it('a mechanism or protocol of a newer agent is shown as sent, made printable', () => {
    const st = natStatus();
    st.portMapping = { protocol: 'pcp\u001b[2J' as 'pcp', external: '203.0.113.7:1', lifetimeSec: 60 };
    st.peers[0]!.path = { ...direct('198.51.100.4:1', undefined), mechanism: 'relay-mesh\u0007' as PathMechanism };
    const text = formatStatus(st);
    expect(text).not.toMatch(/[\u0000-\u0008\u001b]/);
    expect(text).toContain('port mapping pcp [2J 203.0.113.7:1, lease 1m00s');
    expect(cell(text, 'FOUND BY', '1 bob')).toBe('relay-mesh');
  });

  it('--json keeps the reach fields exact: counts and the lease are integers, the mechanism and mapping as sent', () => {
    const j = roundStatus(natStatus());
    expect(j.portMapping).toEqual({ protocol: 'pcp', external: '203.0.113.7:41641', lifetimeSec: 600 });
    expect(j.peers[0]!.birthday).toEqual({ attempts: 2, probes: 2560, found: 1, running: false });
    expect(j.peers.map((p) => (p.path?.kind === 'direct' ? p.path.mechanism : p.path?.kind))).toEqual(['birthday', 'port-mapping', 'ipv6', 'relay']);
  });
});

describe('ping: the path of a sample with what status knows of it', () => {
  // the core's ping reports a direct address as observed and the mechanism of that guess
  const sample: PathInfo = { kind: 'direct', address: '198.51.100.4:40001', lan: false, family: 4, source: 'observed', mechanism: 'stun' };

  it('takes the source and the mechanism from status when the sample went by the path in use', () => {
    const now = peer(1, 'bob', { path: direct('198.51.100.4:40001', 'birthday') });
    expect(withStatusDetails(sample, now)).toEqual({ kind: 'direct', address: '198.51.100.4:40001', lan: false, family: 4, source: 'observed', mechanism: 'birthday' });
    const mapped = peer(1, 'bob', { path: direct('198.51.100.4:40001', 'port-mapping', 'portmap') });
    const line = sampleLine(mapped, { seq: 0, rttMs: 1.25, path: withStatusDetails(sample, mapped) });
    expect(line).toBe('pong from party 1 (bob) via direct 198.51.100.4:40001 (IPv4, port mapping) in 1.3 ms, found by port mapping');
  });

  it('says neither when the path changed meanwhile, or the status has no path; a relayed sample is kept as it is', () => {
    const moved = peer(1, 'bob', { path: direct('198.51.100.9:40001', 'birthday') });
    expect(withStatusDetails(sample, moved)).toEqual({ kind: 'direct', address: '198.51.100.4:40001', lan: false, family: 4 });
    expect(withStatusDetails(sample, undefined)).toEqual({ kind: 'direct', address: '198.51.100.4:40001', lan: false, family: 4 });
    const relayed: PathInfo = { kind: 'relay', relay: RELAY, transport: 'udp' };
    expect(withStatusDetails(relayed, moved)).toBe(relayed);
    const p = peer(1, 'bob', {});
    const samples = [{ seq: 0, rttMs: 2, path: withStatusDetails(sample, moved) }];
    expect(summaryLines(p, samples)).toMatch(/^last answer via direct 198\.51\.100\.4:40001 \(IPv4\)$/m);
    expect(sampleLine(p, { seq: 0, path: relayed })).toBe(`no answer from party 1 (bob) within 2 s (sent via relay udp ${KEY.slice(0, 8)}…@relay.example.org:3478/8080)`);
  });
});

describe('mpyc-agent status (built binary) with a NAT status', () => {
  const dirs: string[] = [];
  const servers: ControlServer[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.close();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('prints the nat line, FOUND BY and the birthday counters; --json carries them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'status-nat-'));
    chmodSync(dir, 0o700);
    dirs.push(dir);
    const path = join(dir, 'agent.sock');
    servers.push(await startControlServer(path, { status: natStatus }));
    const human = await runCli(['status', '--control', path]);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toBe(formatStatus(natStatus()));
    expect(human.stdout).toMatch(/^nat {2}mapping IPv4 endpoint-independent, IPv6 unknown {2}port mapping pcp 203\.0\.113\.7:41641, lease 10m00s$/m);
    expect(human.stdout).toMatch(/^1 bob .* birthday probing {2}/m);
    expect(human.stdout).toMatch(/^1 bob +IPv4 endpoint-dependent +2 attempts, 2560 probes sent, 1 path found$/m);
    const json = await runCli(['status', '--json', '--control', path]);
    expect(JSON.parse(json.stdout)).toEqual(roundStatus(natStatus()));
  });
});
