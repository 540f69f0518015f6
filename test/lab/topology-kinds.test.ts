// Issue #14's router kinds on the real kernel, proven without the agent (udp-probe only):
// address- vs port-restricted filtering, UDP mappings that expire when idle, hairpinning
// (and its absence), isolated LAN ports, IPv6 behind stateful firewalls, a dual-stack
// host behind a symmetric IPv4 NAT, and miniupnpd (UPnP-IGD discovery; NAT-PMP and PCP
// mappings reached from the Internet).
// Needs root (skipped loudly otherwise).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, type LabProcess } from '../../src/lab/lab.js';
import type { LabSpec } from '../../src/lab/spec.js';
import { NODE, PROBE, labRequired, labSkipReason, probeIn, sleep } from './helpers.js';

const skip = labSkipReason([PROBE], { portMapping: true });
if (skip !== undefined && labRequired()) {
  describe('NAT lab required here (CI as root or LAB_REQUIRED=1)', () => { it('can run', () => { expect.fail(`the lab cannot run: ${skip}`); }); });
}

/** the short idle timeout of the expiry router (s): the test waits 1.5 × this */
const IDLE_SEC = 3;

const SPEC: LabSpec = {
  routers: [
    { name: 'rp', nat: 'port-restricted' },
    { name: 'ra', nat: 'address-restricted' },
    { name: 'rh', nat: 'port-restricted', hairpin: true, isolateLan: true },
    { name: 'rn', nat: 'port-restricted', isolateLan: true },
    { name: 'rt', nat: 'port-restricted', udpIdleTimeoutSec: IDLE_SEC },
    { name: 'f6', nat: 'ipv6-firewall' },
    { name: 'g6', nat: 'ipv6-firewall' },
    { name: 'rd', nat: 'symmetric', ipv6: true },
    { name: 'rm', nat: 'symmetric', portMapping: true },
  ],
  hosts: [
    { name: 'srv', attach: 'internet', family: 'dual' },
    { name: 'srv2', attach: 'internet', family: 'dual' },
    { name: 'p', attach: 'rp' }, { name: 'a', attach: 'ra' },
    { name: 'h1', attach: 'rh' }, { name: 'h2', attach: 'rh' },
    { name: 'n1', attach: 'rn' }, { name: 'n2', attach: 'rn' },
    { name: 't', attach: 'rt' },
    { name: 'x6', attach: 'f6' }, { name: 'y6', attach: 'g6' },
    { name: 'd', attach: 'rd' },
    { name: 'm', attach: 'rm' },
  ],
};

describe.skipIf(skip !== undefined)('issue #14 router kinds on the real kernel', () => {
  let lab: Lab;
  let srv: string; let srv6: string;

  const probe = (node: string, args: string[], timeoutMs?: number): ReturnType<typeof probeIn> => probeIn(lab, node, args, timeoutMs);
  const pings = async (from: string, to: string, localPort: number, n = 3): Promise<number> =>
    (await probe(from, ['ping', to, String(n), '0', '300', String(localPort)])).json.received as number;
  /** A reflector on `node`:port that first sends one packet to `announce` (opening its mapping). */
  const held = async (node: string, port: number, announce: string, extra: string[] = []): Promise<{ proc: LabProcess; mapped: string | null }> => {
    const proc = lab.spawn(node, [NODE, PROBE, 'reflector', String(port), '60000', announce, ...extra], { name: `${node}-held-${port}` });
    const line = await proc.waitForLine((l) => l.includes('"announced"'), 10_000, 'mapping announced');
    return { proc, mapped: (JSON.parse(line) as { mapped: string | null }).mapped };
  };

  beforeAll(async () => {
    lab = await Lab.create(SPEC);
    srv = `${lab.address('srv')}:3478`;
    srv6 = `[${lab.address6('srv')}]:3478`;
    for (const n of ['srv', 'srv2']) {
      const p = lab.spawn(n, [NODE, PROBE, 'reflector', '3478', '300000'], { name: `${n}-reflector` });
      const ready = await p.waitForLine((l) => l.includes('"ready"'), 10_000, 'reflector ready');
      expect(JSON.parse(ready)).toMatchObject({ families: 2 }); // dual stack: IPv4 and IPv6 sockets
    }
  }, 60_000);
  afterAll(async () => { await lab?.teardown(); });

  it('address- vs port-restricted: both let in the endpoint contacted and nobody else\'s host; only address-restricted lets in its other ports', async () => {
    // a mapping opened towards srv:5000 (nothing listens there: the packet only opens it)
    const contacted = `${lab.address('srv')}:5000`;
    const got: Record<string, number[]> = {};
    for (const node of ['p', 'a']) {
      const h = await held(node, 41000, contacted);
      const mapped = `${lab.publicAddress(node)}:41000`;
      // EIM mapping either way: the public port is the local one
      got[node] = [await pings('srv', mapped, 5000, 2), await pings('srv', mapped, 5001, 2), await pings('srv2', mapped, 5000, 2)];
      h.proc.kill();
    }
    // [contacted endpoint, same address other port, other address]
    expect(got.p).toEqual([2, 0, 0]);
    expect(got.a).toEqual([2, 2, 0]);
  });

  it('address-restricted: the reply to another port leaves with the same public mapping (EIM)', async () => {
    const h = await held('a', 41001, `${lab.address('srv')}:5002`);
    // from a port a never sent to: the answer comes back from a's public mapping (the
    // probe accepts only that source), and a saw the sender's real address and port
    const fromOtherPort = await probe('srv', ['map', '5003', `${lab.publicAddress('a')}:41001`]);
    expect(fromOtherPort.json.mapped).toEqual([`${lab.address('srv')}:5003`]);
    h.proc.kill();
  });

  it(`idle expiry: a mapping idle for 1.5 × ${IDLE_SEC} s is gone (inbound dropped); a keepalive every 1 s keeps it`, async () => {
    const idle = await held('t', 44000, `${lab.address('srv2')}:5000`);
    const kept = await held('t', 44001, `${lab.address('srv2')}:5001`, ['1000']);
    const pub = lab.publicAddress('t');
    expect([await pings('srv2', `${pub}:44000`, 5000, 1), await pings('srv2', `${pub}:44001`, 5001, 1)]).toEqual([1, 1]); // open now
    // the entries live under the short policy, not the kernel's 30/120 s
    for (const port of [44000, 44001]) {
      const entry = lab.conntrackList('rt').split('\n').find((l) => l.includes(`sport=${port} `));
      expect(Number(entry?.split(/\s+/)[2]), entry).toBeLessThanOrEqual(IDLE_SEC);
    }
    await sleep(IDLE_SEC * 1500);
    expect({ idle: await pings('srv2', `${pub}:44000`, 5000, 2), keepalive: await pings('srv2', `${pub}:44001`, 5001, 2) }).toEqual({ idle: 0, keepalive: 2 });
    idle.proc.kill(); kept.proc.kill();
  });

  it('isolated LAN ports: two hosts behind one router have no LAN path', async () => {
    const r = lab.spawn('h2', [NODE, PROBE, 'reflector', '42100', '20000'], { name: 'h2-lan-reflector' });
    await r.waitForLine((l) => l.includes('"ready"'), 10_000);
    expect(await pings('h1', `${lab.address('h2')}:42100`, 0, 2)).toBe(0);
    r.kill();
  });

  it('hairpinning: LAN → own public mapping reaches its owner, from the sender\'s own public mapping; a router without it drops', async () => {
    const h2 = await held('h2', 42000, srv);
    expect(h2.mapped).toBe(`${lab.publicAddress('h2')}:42000`);
    // h1 from the same local port: its mapping cannot be public :42000 too (h2 has it
    // towards srv), so it gets another port — the one the hairpinned packet must carry
    const own = (await probe('h1', ['map', '42000', srv])).json.mapped as string[];
    expect(own[0]).toMatch(new RegExp(`^${lab.publicAddress('h1')}:\\d+$`));
    expect(own[0]).not.toBe(h2.mapped);
    const hair = await probe('h1', ['map', '42000', h2.mapped!]);
    expect(hair.json.mapped).toEqual(own);
    h2.proc.kill();

    const n2 = await held('n2', 42000, srv);
    expect(n2.mapped).toBe(`${lab.publicAddress('n2')}:42000`);
    expect((await probe('n1', ['map', '43000', n2.mapped!])).json.mapped).toEqual([null]);
    n2.proc.kill();
  });

  it('IPv6-only host behind a stateful firewall: global and unique-local addresses, no IPv4, no NAT', async () => {
    expect(() => lab.address('x6')).toThrow(/no IPv4 address/);
    expect(lab.address6('x6')).toMatch(/^2001:db8:/);
    expect(lab.ula('x6')).toMatch(/^fd00:/);
    const r = await probe('x6', ['map', '45000', srv6]);
    expect(r.json.mapped).toEqual([`[${lab.address6('x6')}]:45000`]);
    expect(lab.exec('x6', ['ip', '-4', 'addr', 'show', 'dev', 'eth0']).stdout).toBe('');
    expect(lab.exec('x6', ['ip', '-4', 'route', 'show']).stdout).toBe('');
  });

  it('IPv6 firewall drops unsolicited inbound; a flow the host opened lets its peer in', async () => {
    const r = lab.spawn('x6', [NODE, PROBE, 'reflector', '46000', '20000'], { name: 'x6-reflector' });
    await r.waitForLine((l) => l.includes('"ready"'), 10_000);
    expect(await pings('srv', `[${lab.address6('x6')}]:46000`, 5000, 2)).toBe(0);
    r.kill();
    const h = await held('x6', 46001, `[${lab.address6('srv')}]:5000`);
    expect(await pings('srv', `[${lab.address6('x6')}]:46001`, 5000, 2)).toBe(2);
    // address-and-port dependent, like the port-restricted NAT
    expect(await pings('srv', `[${lab.address6('x6')}]:46001`, 5001, 2)).toBe(0);
    h.proc.kill();
  });

  it('IPv6 behind two stateful firewalls: simultaneous punching opens a direct path between global addresses', async () => {
    const [x, y] = await Promise.all([probe('x6', ['punch', srv6, 'x6', 'y6', '5000']), probe('y6', ['punch', srv6, 'y6', 'x6', '5000'])]);
    expect(x.json).toMatchObject({ ok: true, from: y.json.mapped });
    expect(y.json).toMatchObject({ ok: true, from: x.json.mapped });
    expect(String(x.json.mapped)).toMatch(new RegExp(`^\\[${lab.address6('x6')}\\]:`));
  });

  it('dual stack behind a symmetric IPv4 NAT: IPv4 mapping per destination, IPv6 the host\'s own address and port', async () => {
    const v4 = (await probe('d', ['map', '47000', srv, `${lab.address('srv2')}:3478`])).json.mapped as string[];
    expect(v4.every((m) => m.startsWith(`${lab.publicAddress('d')}:`))).toBe(true);
    expect(v4[0]).not.toBe(v4[1]);
    const v6 = (await probe('d', ['map', '47000', srv6, `[${lab.address6('srv2')}]:3478`])).json.mapped as string[];
    expect(v6).toEqual([`[${lab.address6('d')}]:47000`, `[${lab.address6('d')}]:47000`]);
  });

  for (const protocol of ['natpmp', 'pcp'] as const) {
    it(`miniupnpd in front of a symmetric NAT: a ${protocol === 'pcp' ? 'PCP' : 'NAT-PMP'} mapping is reachable from any Internet host; deleted, it is gone`, async () => {
      const port = protocol === 'pcp' ? 48001 : 48000;
      // without a mapping the symmetric router lets nothing in
      const plain = lab.spawn('m', [NODE, PROBE, 'reflector', String(port), '20000'], { name: `m-plain-${port}` });
      await plain.waitForLine((l) => l.includes('"ready"'), 10_000);
      expect(await pings('srv', `${lab.publicAddress('m')}:${port}`, 5000, 2)).toBe(0);
      plain.kill();
      await plain.exited;

      const pm = lab.spawn('m', [NODE, PROBE, 'portmap', protocol, lab.lanAddress('rm'), String(port), '120', '2500'], { name: `m-${protocol}` });
      const line = await pm.waitForLine((l) => l.includes('"external"'), 10_000, 'mapping granted');
      const got = JSON.parse(line) as { external: string; mapping: { result: number; externalAddress: string; internalPort: number; lifetimeSec: number } };
      expect(got.mapping).toMatchObject({ result: 0, externalAddress: lab.publicAddress('m'), internalPort: port });
      expect(got.mapping.lifetimeSec).toBeGreaterThan(0);
      // two hosts that m never sent a packet to reach it through the mapping
      expect(await pings('srv', got.external, 5000, 2)).toBe(2);
      expect(await pings('srv2', got.external, 5001, 2)).toBe(2);
      expect(lab.nftList('rm')).toMatch(new RegExp(`dnat ip to ${lab.address('m')}:${port}`));
      const e = await pm.exited;
      expect(e.code).toBe(0);
      expect(JSON.parse(pm.lines.at(-1)!)).toMatchObject({ deleted: { result: 0, lifetimeSec: 0 } });
      expect(lab.nftList('rm')).not.toContain(`${lab.address('m')}:${port}`);
    });
  }

  it('miniupnpd answers UPnP-IGD discovery on the LAN: SSDP M-SEARCH, then its device description', async () => {
    const r = await probe('m', ['ssdp', '3000']);
    expect(r.json).toMatchObject({ ok: true, location: expect.stringMatching(new RegExp(`^http://${lab.lanAddress('rm').replace(/\./g, '\\.')}:\\d+/`)) });
    expect(r.json.deviceTypes).toEqual(expect.arrayContaining([expect.stringMatching(/^urn:schemas-upnp-org:device:InternetGatewayDevice:\d$/), expect.stringMatching(/WANConnectionDevice/)]));
  });

  it('miniupnpd learned its public address from the lab\'s STUN responder', () => {
    const log = lab.helper('miniupnpd-rm')!.stderrLines.join('\n');
    expect(log).toContain(`STUN: ext interface wan with IP address ${lab.publicAddress('m')} is now behind unrestricted full-cone NAT 1:1`);
    expect(log).toContain('Port forwarding is now enabled');
  });
});
