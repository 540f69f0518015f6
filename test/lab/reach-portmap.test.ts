// The agent's port mapper (src/agent/portmap, from dist/) against the lab's real miniupnpd
// in front of a symmetric NAT, one protocol at a time: PCP, NAT-PMP and UPnP-IGD each get
// a mapping whose external address is the router's public one, which hosts on the
// Internet that the LAN host never sent to can reach; closing deletes it (the router's
// DNAT rule is gone and the port is closed again). The agent in a whole row:
// reach.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Lab } from '../../src/lab/lab.js';
import type { LabSpec } from '../../src/lab/spec.js';
import { MpycLab } from '../../src/lab/mpyc-lab.js';
import { DIST, labRequired, labSkipReason, NODE, PROBE, probeIn, waitUntil } from './helpers.js';

const MAPPER = join(DIST, 'src', 'agent', 'portmap', 'port-mapper.js');
const skip = labSkipReason([PROBE, MAPPER, join(DIST, 'src', 'agent', 'cli.js')], { portMapping: true });
if (skip !== undefined && labRequired()) {
  describe('NAT lab required here (CI as root or LAB_REQUIRED=1)', () => { it('can run', () => { expect.fail(`the lab cannot run: ${skip}`); }); });
}

const SPEC: LabSpec = {
  routers: [{ name: 'rm', nat: 'symmetric', portMapping: true }],
  hosts: [{ name: 'srv', attach: 'internet' }, { name: 'srv2', attach: 'internet' }, { name: 'relay', attach: 'internet' }, { name: 'm', attach: 'rm' }],
};

/**
 * A process in the LAN host that maps `port` with one protocol, prints the mapping as a
 * JSON line, and on SIGTERM (or after 20 s) closes the mapper and prints "closed".
 */
function mapperScript(protocol: string, port: number): string {
  return `
import { PortMapper } from ${JSON.stringify(pathToFileURL(MAPPER).href)};
import pino from 'pino';
const m = new PortMapper({ internalPort: ${port}, protocols: [${JSON.stringify(protocol)}], logger: pino({ level: 'silent' }),
  onChange: (x) => console.log(JSON.stringify({ mapping: x ?? null })) });
m.start();
const stop = async () => { await m.close(2000); console.log(JSON.stringify({ closed: true })); process.exit(0); };
process.on('SIGTERM', stop);
setTimeout(stop, 20000);
`;
}

describe.skipIf(skip !== undefined)('the agent\'s port mapper against miniupnpd', () => {
  let lab: Lab;
  beforeAll(async () => { lab = await Lab.create(SPEC); }, 60_000);
  afterAll(async () => { await lab?.teardown(); });

  const pings = async (from: string, to: string, localPort: number): Promise<number> =>
    (await probeIn(lab, from, ['ping', to, '2', '0', '300', String(localPort)])).json.received as number;

  for (const [protocol, port] of [['pcp', 45100], ['natpmp', 45200], ['upnp', 45300]] as const) {
    it(`${protocol}: a mapping on the router's public address that any Internet host reaches; deleted on close`, async () => {
      const reflector = lab.spawn('m', [NODE, PROBE, 'reflector', String(port), '30000'], { name: `m-reflector-${protocol}` });
      await reflector.waitForLine((l) => l.includes('"ready"'), 10_000);
      // the symmetric NAT lets nothing in unasked
      expect(await pings('srv', `${lab.publicAddress('m')}:${port}`, 5000)).toBe(0);

      const mapper = lab.spawn('m', [NODE, '--input-type=module', '-e', mapperScript(protocol, port)], { name: `m-mapper-${protocol}` });
      const line = await mapper.waitForLine((l) => l.includes('"mapping"'), 15_000, 'mapping granted');
      const { mapping } = JSON.parse(line) as { mapping: { protocol: string; externalAddress: string; externalPort: number; internalPort: number; lifetimeSec: number } };
      expect(mapping).toMatchObject({ protocol, externalAddress: lab.publicAddress('m'), internalPort: port });
      expect(mapping.lifetimeSec).toBeGreaterThan(0);
      const external = `${mapping.externalAddress}:${mapping.externalPort}`;
      expect(lab.nftList('rm')).toMatch(new RegExp(`dnat ip to ${lab.address('m')}:${port}`));
      expect(await pings('srv', external, 5001)).toBe(2);
      expect(await pings('srv2', external, 5002)).toBe(2);

      mapper.kill('SIGTERM');
      await mapper.waitForLine((l) => l.includes('"closed"'), 10_000, 'mapper closed');
      expect(lab.nftList('rm')).not.toContain(`${lab.address('m')}:${port}`);
      expect(await pings('srv', external, 5003)).toBe(0);
      reflector.kill();
    }, 60_000);
  }

  it('the agent maps its UDP port at start, shows it in status, and deletes it when stopped (within its stop grace)', async () => {
    const ml = MpycLab.create(lab, { relays: ['relay'], parties: [{ node: 'm' }, { node: 'srv' }] });
    await ml.startRelay(0);
    const agent = ml.startAgent(0);
    const line = await agent.waitForLine((l) => l.includes('"msg":"port mapping"'), 15_000, 'port mapping log line');
    const logged = JSON.parse(line) as { protocol: string; external: string; internalPort: number };
    // PCP is asked first, and miniupnpd speaks it
    expect(logged.protocol).toBe('pcp');
    expect(logged.external.startsWith(`${lab.publicAddress('m')}:`)).toBe(true);
    const st = await waitUntil(() => ml.tryStatus(0)?.portMapping ? ml.tryStatus(0) : undefined, 5000, 'status with the mapping');
    expect(st.portMapping).toEqual({ protocol: 'pcp', external: logged.external, lifetimeSec: expect.any(Number) });
    expect(st.udpPort).toBe(logged.internalPort);
    expect(lab.nftList('rm')).toContain(`${lab.address('m')}:${logged.internalPort}`);
    const t0 = Date.now();
    await ml.stopAgent(0);
    const stoppedMs = Date.now() - t0;
    expect(agent.jsonLines().some((j) => j.msg === 'port mapping deleted')).toBe(true);
    expect(lab.nftList('rm')).not.toContain(`${lab.address('m')}:${logged.internalPort}`);
    // the default grace is 500 ms; stop() ends within it + ~1 s (Node's exit included here)
    expect(stoppedMs).toBeLessThan(3000);
    await ml.stopRelay(0);
  }, 60_000);
});
