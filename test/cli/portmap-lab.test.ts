// `mpyc-agent up --no-portmap` and the port mapping in `status`, behind a real router: the
// NAT lab's symmetric NAT with miniupnpd (PCP, NAT-PMP, UPnP-IGD) in front of one LAN host
// running two agents of one session side by side, one as is and one with --no-portmap. The
// first gets a mapping and shows it (status table and --json); the second asks nothing of
// the router (no mapping on it, no word of one in its log) in the same time. Needs root;
// says so and skips otherwise (in CI, as root, a lab that cannot be built fails instead).
// The mapper's protocols and the deletion on stop: test/lab/reach-portmap.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { Lab } from '../../src/lab/lab.js';
import { MpycLab } from '../../src/lab/mpyc-lab.js';
import type { LabSpec } from '../../src/lab/spec.js';
import type { AgentStatus } from '../../src/agent/types.js';
import { formatDuration } from '../../src/agent/status-format.js';
import { DIST, labRequired, labSkipReason, sleep, waitUntil } from '../lab/helpers.js';
import { runCli } from './helpers.js';

const AGENT = join(DIST, 'src', 'agent', 'cli.js');
const skip = labSkipReason([AGENT], { portMapping: true });
if (skip !== undefined && labRequired()) {
  describe('NAT lab required here (CI as root or LAB_REQUIRED=1)', () => { it('can run', () => { expect.fail(`the lab cannot run: ${skip}`); }); });
}

const SPEC: LabSpec = {
  routers: [{ name: 'rm', nat: 'symmetric', portMapping: true }],
  hosts: [{ name: 'relay', attach: 'internet' }, { name: 'm', attach: 'rm' }],
};

/** the port mapper's log lines: a mapping, or the protocols tried without one */
const PORTMAP_LOG = /port mapping/;

describe.skipIf(skip !== undefined)('up --no-portmap and status behind a router that maps ports', () => {
  let lab: Lab;
  let ml: MpycLab;
  beforeAll(async () => {
    lab = await Lab.create(SPEC);
    ml = MpycLab.create(lab, { relays: ['relay'], parties: [{ node: 'm' }, { node: 'm', args: ['--no-portmap'] }], logLevel: 'info' });
    await ml.startRelay(0);
  }, 90_000);
  afterAll(async () => {
    if (ml) await Promise.all([ml.stopAgent(0), ml.stopAgent(1)]);
    await lab?.teardown();
  });

  it('the agent started as is maps its port and shows it; the one with --no-portmap asks nothing of the router', async () => {
    const t0 = Date.now();
    const [mapping, off] = [ml.startAgent(0), ml.startAgent(1)];
    await Promise.all([ml.waitAgentReady(0), ml.waitAgentReady(1)]);
    const line = await mapping.waitForLine((l) => l.includes('"msg":"port mapping"'), 15_000, 'port mapping log line');
    const tookMs = Date.now() - t0;
    const granted = JSON.parse(line) as { protocol: string; external: string; internalPort: number; lifetimeSec: number };
    const st: AgentStatus = await waitUntil(() => { const s = ml.tryStatus(0); return s?.portMapping ? s : undefined; }, 5000, 'status with the mapping');
    expect(st.portMapping).toEqual({ protocol: granted.protocol, external: granted.external, lifetimeSec: granted.lifetimeSec });
    expect(granted.external.startsWith(`${lab.publicAddress('m')}:`)).toBe(true);

    const human = await runCli(['status', '--control', ml.parties[0]!.control]);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/^nat {2}mapping IPv4 \S+, IPv6 \S+ {2}port mapping /m);
    expect(human.stdout).toContain(`port mapping ${granted.protocol} ${granted.external}, lease ${formatDuration(granted.lifetimeSec * 1000)}\n`);

    // as long again as the first took (at least a second): the second would have had its answer by then
    await sleep(Math.max(1000, tookMs));
    const offStatus = ml.status(1);
    expect(offStatus.portMapping).toBeUndefined();
    expect(off.jsonLines().filter((j) => PORTMAP_LOG.test(String(j.msg)))).toEqual([]);
    const rules = lab.nftList('rm');
    expect(rules).toContain(`dnat ip to ${lab.address('m')}:${st.udpPort}`);
    expect(rules).not.toContain(`${lab.address('m')}:${offStatus.udpPort}`);
    const offHuman = await runCli(['status', '--control', ml.parties[1]!.control]);
    expect(offHuman.stdout).toMatch(/^nat {2}mapping .* {2}port mapping none$/m);
  }, 60_000);
});
