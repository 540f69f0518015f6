// The topology harness on the real kernel, proven without the agent: NAT mapping and
// filtering behaviour of each router kind, hole punching, UDP blocking, carrier NAT,
// one LAN, delay, loss, and teardown. Needs root (skipped loudly otherwise).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { Lab, sweepStale } from '../../src/lab/lab.js';
import type { LabSpec } from '../../src/lab/spec.js';
import { NODE, PROBE, labSkipReason } from './helpers.js';

const skip = labSkipReason();

const SPEC: LabSpec = {
  routers: [
    { name: 'ra', nat: 'eim' },
    { name: 'rb', nat: 'eim' },
    { name: 'rs', nat: 'symmetric' },
    { name: 'rt', nat: 'symmetric' },
    { name: 'ru', nat: 'udp-blocked' },
    { name: 'cg', nat: 'eim' },
    { name: 'rc', nat: 'eim', upstream: 'cg' },
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

type Json = Record<string, unknown>;

describe.skipIf(skip !== undefined)('lab topology on the real kernel', () => {
  let lab: Lab;
  let srv: string; let srv2: string;

  const probe = async (node: string, args: string[], timeoutMs = 20_000): Promise<{ code: number | null; json: Json }> => {
    const r = await lab.execAsync(node, [NODE, PROBE, ...args], { timeoutMs });
    const last = r.stdout.trim().split('\n').pop() ?? '';
    let json: Json = {};
    try { json = JSON.parse(last) as Json; } catch { /* leave empty: the assertion shows it */ }
    return { code: r.code, json };
  };

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

  it('unsolicited inbound is dropped by a home router, even to a mapped port from a new source', async () => {
    // a's mapping to srv exists; srv2 (never contacted) pinging that public port gets nothing
    const [x] = await Promise.all([probe('a', ['punch', srv, 'a4', 'nobody', '1500'])]);
    expect(x.json.ok).toBe(false);
    const r = await probe('srv2', ['ping', `${lab.publicAddress('a')}:40000`, '3', '0', '200']);
    expect(r.json.received).toBe(0);
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

  it('delay bridge: 20 ms one way (+ up to 2 ms jitter) gives a 40–50 ms round trip', async () => {
    const r = await probe('pub', ['ping', srv, '20', '10', '1000']);
    const rtts = r.json.rttsMs as number[];
    expect(rtts).toHaveLength(20);
    // the first round trip also carries ARP resolution across the bridge (one more RTT)
    expect(rtts[0]!).toBeGreaterThanOrEqual(40);
    for (const t of rtts.slice(1)) { expect(t).toBeGreaterThanOrEqual(40); expect(t).toBeLessThan(60); }
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
  it('teardown kills every process and deletes every namespace it made', async () => {
    const lab = await Lab.create({ routers: [{ name: 'r', nat: 'eim' }], hosts: [{ name: 'h', attach: 'r', link: { delayMs: 1 } }, { name: 'x', attach: 'internet' }] });
    const p = lab.spawn('h', ['sleep', '600']);
    expect(lab.existingNamespaces()).toHaveLength(5); // internet, r, h, x, delay middle
    await lab.teardown();
    expect(p.running).toBe(false);
    expect(lab.existingNamespaces()).toEqual([]);
  });

  it('a sweep removes namespaces whose owner process is gone', () => {
    let dead = 999_999;
    for (; dead > 900_000; dead--) { try { process.kill(dead, 0); } catch { break; } }
    const ns = `mlab${dead}x1-stale`;
    expect(spawnSync('ip', ['netns', 'add', ns]).status).toBe(0);
    expect(sweepStale()).toContain(ns);
    expect(spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout).not.toContain(ns);
  });
});
