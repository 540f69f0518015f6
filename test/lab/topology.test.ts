// The topology harness on the real kernel, proven without the agent: NAT mapping and
// filtering behaviour of each router kind, hole punching, UDP blocking, carrier NAT,
// one LAN, delay, loss, and teardown. Needs root (skipped loudly otherwise).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Lab, sweepStale } from '../../src/lab/lab.js';
import type { LabSpec } from '../../src/lab/spec.js';
import { DIST, NODE, PROBE, labRequired, labSkipReason, probeIn, waitUntil } from './helpers.js';

const skip = labSkipReason([PROBE], { portMapping: true });
if (skip !== undefined && labRequired()) {
  describe('NAT lab required here (CI as root or LAB_REQUIRED=1)', () => { it('can run', () => { expect.fail(`the lab cannot run: ${skip}`); }); });
}

const SPEC: LabSpec = {
  routers: [
    { name: 'ra', nat: 'port-restricted' },
    { name: 'rb', nat: 'port-restricted' },
    { name: 'rs', nat: 'symmetric' },
    { name: 'rt', nat: 'symmetric' },
    { name: 'ru', nat: 'udp-blocked' },
    { name: 'cg', nat: 'port-restricted' },
    { name: 'rc', nat: 'port-restricted', upstream: 'cg' },
  ],
  hosts: [
    { name: 'srv', attach: 'internet' },
    { name: 'srv2', attach: 'internet' },
    { name: 'pub', attach: 'internet', link: { delayMs: 20, jitterMs: 2 } },
    { name: 'lossy', attach: 'internet', link: { lossPct: 10 } },
    { name: 'a', attach: 'ra' },
    { name: 'a2', attach: 'ra' },
    { name: 'b', attach: 'rb' },
    { name: 's', attach: 'rs' },
    { name: 't', attach: 'rt' },
    { name: 'u', attach: 'ru' },
    { name: 'c', attach: 'rc' },
  ],
};

describe.skipIf(skip !== undefined)('lab topology on the real kernel', () => {
  let lab: Lab;
  let srv: string; let srv2: string;

  const probe = (node: string, args: string[], timeoutMs?: number): ReturnType<typeof probeIn> => probeIn(lab, node, args, timeoutMs);

  beforeAll(async () => {
    lab = await Lab.create(SPEC);
    srv = `${lab.address('srv')}:3478`;
    srv2 = `${lab.address('srv2')}:3478`;
    for (const n of ['srv', 'srv2', 'a2']) {
      const p = lab.spawn(n, [NODE, PROBE, 'reflector', '3478', '300000'], { name: `${n}-reflector` });
      await p.waitForLine((l) => l.includes('"ready"'), 10_000, 'reflector ready');
    }
  }, 60_000);
  afterAll(async () => { await lab?.teardown(); });

  it('EIM NAT: one local port maps to the same public address for every destination', async () => {
    const r = await probe('a', ['map', '40000', srv, srv2]);
    expect(r.json.mapped).toEqual([`${lab.publicAddress('a')}:40000`, `${lab.publicAddress('a')}:40000`]);
  });

  it('symmetric NAT: one local port maps to a different public port per destination', async () => {
    const r = await probe('s', ['map', '40000', srv, srv2]);
    const m = r.json.mapped as string[];
    expect(m).toHaveLength(2);
    expect(m[0]!.split(':')[0]).toBe(lab.publicAddress('s'));
    expect(m[1]!.split(':')[0]).toBe(lab.publicAddress('s'));
    expect(m[0]).not.toBe(m[1]);
  });

  it('EIM ↔ EIM: simultaneous punching opens a direct path', async () => {
    const [x, y] = await Promise.all([probe('a', ['punch', srv, 'a', 'b', '5000']), probe('b', ['punch', srv, 'b', 'a', '5000'])]);
    expect(x.json).toMatchObject({ ok: true, from: y.json.mapped });
    expect(y.json).toMatchObject({ ok: true, from: x.json.mapped });
  });

  it('carrier NAT in front of a home NAT: the public address is the carrier\'s; punching to an EIM NAT works', async () => {
    expect(lab.publicAddress('c')).toBe(lab.address('cg'));
    expect(lab.address('rc')).toMatch(/^100\.64\./);
    const [x, y] = await Promise.all([probe('c', ['punch', srv, 'c', 'b2', '5000']), probe('b', ['punch', srv, 'b2', 'c', '5000'])]);
    expect(x.json.ok).toBe(true);
    expect(y.json.ok).toBe(true);
    expect(String(x.json.mapped).split(':')[0]).toBe(lab.address('cg'));
  });

  it('symmetric ↔ symmetric: punching fails (mapping and filtering both depend on the destination)', async () => {
    const [x, y] = await Promise.all([probe('s', ['punch', srv, 's', 't', '2500']), probe('t', ['punch', srv, 't', 's', '2500'])]);
    expect(x.code).toBe(1);
    expect(y.code).toBe(1);
    expect(x.json.ok).toBe(false);
    expect(x.json.sent).toBeGreaterThan(10);
  });

  it('EIM ↔ symmetric: punching fails (the EIM router filters by address and port)', async () => {
    const [x, y] = await Promise.all([probe('a', ['punch', srv, 'a3', 's3', '2500']), probe('s', ['punch', srv, 's3', 'a3', '2500'])]);
    expect(x.json.ok).toBe(false);
    expect(y.json.ok).toBe(false);
  });

  it('inbound filtering: a mapped port answers only the address and port it was opened to', async () => {
    const other = lab.spawn('srv', [NODE, PROBE, 'reflector', '3479', '30000'], { name: 'srv-reflector-3479' });
    await other.waitForLine((l) => l.includes('"ready"'), 10_000);
    const held = lab.spawn('a', [NODE, PROBE, 'reflector', '41000', '30000', `${lab.address('srv')}:3479`], { name: 'a-held-reflector' });
    const line = await held.waitForLine((l) => l.includes('"announced"'), 10_000, 'mapping announced');
    const mapped = (JSON.parse(line) as { mapped: string }).mapped;
    expect(mapped).toBe(`${lab.publicAddress('a')}:41000`);
    await other.stop();
    // from srv:3479, the endpoint a contacted: "established", reaches a's reflector
    const fromContacted = await probe('srv', ['ping', mapped, '3', '0', '500', '3479']);
    expect(fromContacted.json.received).toBe(3);
    // same address, another port: dropped (port-dependent filtering)
    const otherPort = await probe('srv', ['ping', mapped, '3', '0', '300', '3480']);
    expect(otherPort.json).toMatchObject({ sent: 3, received: 0 });
    // another host: dropped
    const otherHost = await probe('srv2', ['ping', mapped, '3', '0', '300', '3479']);
    expect(otherHost.json).toMatchObject({ sent: 3, received: 0 });
    held.kill();
  });

  it('UDP blocked: no UDP crosses the router, TCP does', async () => {
    const udp = await probe('u', ['ping', srv, '3', '0', '300']);
    expect(udp.json).toMatchObject({ sent: 3, received: 0 });
    const echo = lab.spawn('srv', [NODE, PROBE, 'tcp-echo', '8080', '60000'], { name: 'srv-tcp-echo' });
    await echo.waitForLine((l) => l.includes('"ready"'), 10_000);
    const tcp = await probe('u', ['tcp-ping', `${lab.address('srv')}:8080`, '3000']);
    expect(tcp.json.ok).toBe(true);
    echo.kill();
  });

  it('two hosts on one LAN reach each other by their LAN addresses', async () => {
    expect(lab.address('a').split('.').slice(0, 3)).toEqual(lab.address('a2').split('.').slice(0, 3));
    const r = await probe('a', ['ping', `${lab.address('a2')}:3478`, '5', '0', '500']);
    expect(r.json.received).toBe(5);
  });

  it('delay bridge: 20 ms one way (+ up to 2 ms jitter) gives round trips of at least 40 ms, median under 50 ms', async () => {
    const r = await probe('pub', ['ping', srv, '20', '10', '1000']);
    const rtts = r.json.rttsMs as number[];
    expect(rtts).toHaveLength(20);
    // the first round trip also carries ARP resolution across the bridge (one more RTT)
    expect(rtts[0]!).toBeGreaterThanOrEqual(40);
    // the bridge never releases early; late only by scheduling (a loaded 2-core machine)
    for (const t of rtts) expect(t).toBeGreaterThanOrEqual(40);
    const sorted = rtts.slice(1).sort((x, y) => x - y);
    expect(sorted[Math.floor(sorted.length / 2)]!).toBeLessThan(50); // median: 40 + E[2 jitters] = 42 ms, plus processing
    expect(sorted.filter((t) => t >= 60).length).toBeLessThanOrEqual(2);
  });

  it('loss: 10 % per direction loses about 19 % of round trips', async () => {
    const r = await probe('lossy', ['ping', srv, '200', '0', '150'], 60_000);
    expect(r.json.sent).toBe(200);
    // binomial(200, 0.19): mean 38, sd 5.5; [15, 65] is beyond 4 sd either side
    expect(r.json.lost as number).toBeGreaterThanOrEqual(15);
    expect(r.json.lost as number).toBeLessThanOrEqual(65);
  }, 60_000);

  it('conntrack flush on a router forgets its mappings', () => {
    expect(lab.conntrackList('ra')).toMatch(/udp/);
    lab.flushConntrack('ra');
    expect(lab.conntrackList('ra')).not.toMatch(/dport=3478/);
  });
});

describe.skipIf(skip !== undefined)('lab teardown', () => {
  it('teardown kills every process (its own helpers too: delay bridge, STUN responder, miniupnpd) and deletes every namespace it made', async () => {
    const lab = await Lab.create({ routers: [{ name: 'r', nat: 'symmetric', portMapping: true }], hosts: [{ name: 'h', attach: 'r', link: { delayMs: 1 } }, { name: 'x', attach: 'internet' }] });
    const p = lab.spawn('h', ['sleep', '600']);
    expect(lab.existingNamespaces()).toHaveLength(5); // internet, r, h, x, delay middle
    const helpers = lab.processes.filter((q) => q !== p);
    expect(helpers.map((q) => q.name.replace(/-\w+$/, '')).sort()).toEqual(['bridge', 'miniupnpd', 'stun']);
    expect(helpers.every((q) => q.running)).toBe(true);
    await lab.teardown();
    expect(p.running).toBe(false);
    expect(helpers.filter((q) => q.running)).toEqual([]);
    expect(lab.existingNamespaces()).toEqual([]);
  });

  // A child process builds a lab with a process inside, then ends in one of four ways;
  // nothing of the lab may survive it.
  const LAB_JS = join(DIST, 'src', 'lab', 'lab.js');
  const childScript = (how: string): string => `
    import { Lab } from ${JSON.stringify(LAB_JS)};
    const lab = await Lab.create({ routers: [{ name: 'r', nat: 'symmetric', portMapping: true }], hosts: [{ name: 'h', attach: 'r', link: { delayMs: 1 } }] });
    const p = lab.spawn('h', ['sleep', '600']);
    await new Promise((r) => setTimeout(r, 200));
    console.log(JSON.stringify({ namespaces: lab.plan.namespaces, pid: p.pid, miniupnpd: lab.helper('miniupnpd-r').pid }));
    await new Promise((r) => setTimeout(r, 1000)); // the test looks at the lab meanwhile
    if (${JSON.stringify(how)} === 'exit') process.exit(3);
    if (${JSON.stringify(how)} === 'throw') throw new Error('boom');
    setTimeout(() => undefined, 60_000);`;
  const alive = (pid: number): boolean => { try { process.kill(pid, 0); return true; } catch { return false; } };
  const listNs = (): string => spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;

  for (const how of ['exit', 'throw', 'SIGINT', 'SIGTERM', 'SIGKILL'] as const) {
    it(`nothing survives the owner process ending by ${how}${how === 'SIGKILL' ? ' (the next run sweeps it)' : ''}`, async () => {
      const child = spawn(NODE, ['--input-type=module', '-e', childScript(how)], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
      const info = await waitUntil(() => (out.includes('\n') ? JSON.parse(out.split('\n')[0]!) as { namespaces: string[]; pid: number; miniupnpd: number } : undefined), 20_000, 'child lab up', 50);
      expect(info.namespaces).toHaveLength(4);
      for (const ns of info.namespaces) expect(listNs()).toContain(ns);
      expect(alive(info.pid)).toBe(true);
      expect(alive(info.miniupnpd)).toBe(true);
      const exited = new Promise<void>((r) => child.on('close', () => r()));
      if (how === 'SIGINT' || how === 'SIGTERM' || how === 'SIGKILL') child.kill(how);
      await exited;
      if (how === 'SIGKILL') {
        // no handler can run: the namespaces are left behind until a sweep
        expect(listNs()).toContain(info.namespaces[0]);
        expect(sweepStale()).toEqual(expect.arrayContaining(info.namespaces));
      }
      await waitUntil(() => (!alive(info.pid) && !alive(info.miniupnpd)) || undefined, 5000, 'sleep and miniupnpd killed');
      for (const ns of info.namespaces) expect(listNs()).not.toContain(ns);
    }, 30_000);
  }

  it('a sweep removes namespaces whose owner process is gone', () => {
    let dead = 999_999;
    for (; dead > 900_000; dead--) { try { process.kill(dead, 0); } catch { break; } }
    const ns = `mlab${dead}x1-stale`;
    expect(spawnSync('ip', ['netns', 'add', ns]).status).toBe(0);
    expect(sweepStale()).toContain(ns);
    expect(spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout).not.toContain(ns);
  });
});
