// `mpyc-agent netcheck` behind real kernel NATs (the NAT lab: network namespaces, nftables):
// two relay processes on the lab's Internet, netcheck run inside hosts behind an
// endpoint-independent NAT, a symmetric NAT, a UDP-blocking router and a dual-stack router
// (symmetric IPv4, firewalled IPv6 without NAT). Needs root; says so and skips otherwise (in
// CI, as root, a lab that cannot be built fails instead).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { Lab } from '../../src/lab/lab.js';
import { MpycLab, RELAY_HTTP_PORT, RELAY_UDP_PORT } from '../../src/lab/mpyc-lab.js';
import type { LabSpec } from '../../src/lab/spec.js';
import type { NetcheckReport } from '../../src/agent/netcheck-report.js';
import { DIST, NODE, labRequired, labSkipReason } from '../lab/helpers.js';

const AGENT = join(DIST, 'src', 'agent', 'cli.js');
const skip = labSkipReason([AGENT]);
if (skip !== undefined && labRequired()) {
  describe('NAT lab required here (CI as root or LAB_REQUIRED=1)', () => { it('can run', () => { expect.fail(`the lab cannot run: ${skip}`); }); });
}

const SPEC: LabSpec = {
  routers: [
    { name: 'ra', nat: 'port-restricted' },
    { name: 'rs', nat: 'symmetric' },
    { name: 'ru', nat: 'udp-blocked' },
    { name: 'ds', nat: 'symmetric', ipv6: true },
  ],
  hosts: [
    { name: 'srv', attach: 'internet', family: 'dual' },
    { name: 'srv2', attach: 'internet', family: 'dual' },
    { name: 'a', attach: 'ra' },
    { name: 's', attach: 'rs' },
    { name: 'u', attach: 'ru' },
    { name: 'd', attach: 'ds' },
  ],
};

describe.skipIf(skip !== undefined)('mpyc-agent netcheck behind real NATs', () => {
  let lab: Lab;
  let ml: MpycLab;
  let v4: string[];
  let v6: string[];

  beforeAll(async () => {
    lab = await Lab.create(SPEC);
    // relays without their second STUN port (on by default): this file classifies from two
    // relays; one relay's second port is test/relay/stun-alt.test.ts's and the lab's
    ml = MpycLab.create(lab, { relays: ['srv', 'srv2'], parties: [], relayArgs: ['--stun-alt-port', '0'] });
    await Promise.all([ml.startRelay(0), ml.startRelay(1)]);
    v4 = ml.relays.map((r) => r.address);
    v6 = ml.relays.map((r) => `${r.publicKey}@[${lab.address6(r.node)}]:${RELAY_UDP_PORT}/${RELAY_HTTP_PORT}`);
  }, 90_000);
  afterAll(async () => { await lab?.teardown(); });

  async function netcheck(node: string, relays: string[], json = true): Promise<{ code: number | null; report: NetcheckReport; stdout: string }> {
    const r = await lab.execAsync(node, [NODE, AGENT, 'netcheck', ...relays.flatMap((a) => ['--relay', a]), ...(json ? ['--json'] : [])], { timeoutMs: 30_000 });
    let report = {} as NetcheckReport;
    if (json) { try { report = JSON.parse(r.stdout) as NetcheckReport; } catch { throw new Error(`netcheck in ${node}: exit ${r.code}\n${r.stdout}\n${r.stderr}`); } }
    return { code: r.code, report, stdout: r.stdout };
  }

  it('behind an endpoint-independent NAT: the public address, the same from both relays; with one relay (no second STUN port) the mapping is unknown', async () => {
    const [{ code, report }, one] = await Promise.all([netcheck('a', v4), netcheck('a', v4.slice(0, 1))]);
    expect(code).toBe(0);
    const f = report.families.find((x) => x.family === 4)!;
    expect(f).toMatchObject({ mapping: 'endpoint-independent', nat: true });
    expect(f.reflexive).toHaveLength(1);
    expect(f.reflexive[0]!.split(':')[0]).toBe(lab.publicAddress('a'));
    expect(report.websocket).toBe(true);
    expect(one.report.families[0]).toMatchObject({ mapping: 'unknown', mappingReason: 'one STUN endpoint', nat: true });
  }, 60_000);

  it('behind a symmetric NAT: a different public port towards each relay, endpoint-dependent', async () => {
    const { code, report } = await netcheck('s', v4);
    expect(code).toBe(0);
    const f = report.families.find((x) => x.family === 4)!;
    expect(f).toMatchObject({ mapping: 'endpoint-dependent', nat: true });
    expect(f.reflexive).toHaveLength(2);
    for (const r of f.reflexive) expect(r.split(':')[0]).toBe(lab.publicAddress('s'));
    const human = await netcheck('s', v4, false);
    expect(human.stdout).toMatch(/^ {2}mapping {4}IPv4 endpoint-dependent: 2 different reflexive addresses from 2 STUN endpoints \(a symmetric NAT: a peer behind one too is reached through the relay\)$/m);
    expect(human.stdout).toMatch(new RegExp(`^ {2}IPv4 {7}reflexive ${lab.publicAddress('s').replace(/\./g, '\\.')}:\\d+, ${lab.publicAddress('s').replace(/\./g, '\\.')}:\\d+ \\(behind a NAT; local port \\d+\\)$`, 'm'));
  }, 60_000);

  it('UDP blocked: no STUN answer, but the WebSocket opens (exit 0: the agent works, through the relay over TCP)', async () => {
    const { code, report } = await netcheck('u', v4);
    expect(code).toBe(0);
    expect(report.udp).toBe(false);
    expect(report.websocket).toBe(true);
    expect(report.nearest).toMatchObject({ over: 'websocket' });
    for (const c of report.relays) expect(c.udp[0]).toMatchObject({ answered: 0 });
  }, 60_000);

  it('dual stack behind a symmetric IPv4 NAT and an IPv6 firewall: IPv4 endpoint-dependent, IPv6 endpoint-independent with the host\'s own address', async () => {
    const { code, report } = await netcheck('d', [...v4, ...v6]);
    expect(code).toBe(0);
    const f4 = report.families.find((x) => x.family === 4)!;
    const f6 = report.families.find((x) => x.family === 6)!;
    expect(f4).toMatchObject({ mapping: 'endpoint-dependent', nat: true });
    expect(f6).toMatchObject({ mapping: 'endpoint-independent', nat: false });
    expect(f6.reflexive).toEqual([`[${lab.address6('d')}]:${f6.localPort}`]);
    expect(report.relays.flatMap((c) => c.udp.map((p) => p.family))).toEqual([4, 4, 6, 6]);
  }, 60_000);
});
