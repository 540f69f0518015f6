// The planner is pure: these run everywhere (no root needed).
import { describe, expect, it } from 'vitest';
import { planLab, planToShell, publicAddressOf, type Plan } from '../../src/lab/plan.js';
import { validateSpec, type LabSpec } from '../../src/lab/spec.js';
import { REACH_ROWS } from './reach-rows.js';

const SPEC: LabSpec = {
  routers: [{ name: 'cg', nat: 'port-restricted' }, { name: 'home', nat: 'symmetric', upstream: 'cg', wan: { lossPct: 5 } }],
  hosts: [
    { name: 'relay', attach: 'internet', link: { delayMs: 10, jitterMs: 1 } },
    { name: 'h1', attach: 'home' },
    { name: 'h2', attach: 'home', link: { rateMbit: 100 } },
  ],
};

describe('lab planner', () => {
  const plan = planLab(SPEC, 'mlab1x1-');

  it('gives addresses from the test ranges only, as documented', () => {
    expect(plan.nodes.get('cg')!.address).toBe('198.18.1.2');
    expect(plan.nodes.get('relay')!.address).toBe('198.18.2.2');
    expect(plan.nodes.get('cg')!.lanAddress).toBe('100.64.1.1'); // carrier LAN
    expect(plan.nodes.get('home')!.address).toBe('100.64.1.10');
    expect(plan.nodes.get('home')!.lanAddress).toBe('10.2.0.1'); // home LAN
    expect(plan.nodes.get('h1')!.address).toBe('10.2.0.10');
    expect(plan.nodes.get('h2')!.address).toBe('10.2.0.11');
    for (const l of plan.links) for (const a of [l.childAddr, l.parentAddr]) expect(a).toMatch(/^(198\.18\.|100\.64\.|10\.)/);
    for (const n of plan.nodes.values()) expect(n.address6).toBeUndefined();
  });

  it('public address of a host behind two NATs is the outermost NAT\'s', () => {
    expect(publicAddressOf(plan, SPEC, 'h1')).toBe('198.18.1.2');
    expect(publicAddressOf(plan, SPEC, 'relay')).toBe('198.18.2.2');
  });

  it('every namespace carries the prefix; a delayed link gets a middle namespace and a bridge', () => {
    expect(plan.namespaces.every((n) => n.startsWith('mlab1x1-'))).toBe(true);
    const relayLink = plan.links.find((l) => l.child === 'relay')!;
    expect(relayLink.midNs).toBe(`mlab1x1-0d${relayLink.id}`);
    expect(plan.bridges).toEqual([{ ns: relayLink.midNs, a: 'a', b: 'b', delayUs: 10_000, jitterUs: 1000, seed: relayLink.id }]);
    // checksum offload off on both real ends of the bridged link
    const eth = plan.steps.filter((s) => s.argv.includes('ethtool')).map((s) => s.argv.join(' '));
    expect(eth).toEqual([`ip netns exec mlab1x1-relay ethtool -K eth0 tx off`, `ip netns exec mlab1x1-0inet ethtool -K ${relayLink.parentIf} tx off`]);
  });

  it('loss goes on the ingress of both ends; rate by tbf on both ends', () => {
    const loss = plan.steps.filter((s) => s.stdin?.includes('numgen'));
    expect(loss.map((s) => s.argv[3])).toEqual(['mlab1x1-home', 'mlab1x1-cg']);
    expect(loss[0]!.stdin).toContain('device "wan"');
    expect(loss[1]!.stdin).toContain('device "p0"');
    expect(plan.steps.filter((s) => s.argv.includes('tbf'))).toHaveLength(2);
  });

  it('renders as a shell script with heredocs for rule sets', () => {
    const sh = planToShell(plan);
    expect(sh).toContain('ip netns add mlab1x1-0inet\n');
    expect(sh).toContain("nft -f - <<'EOF'\ntable ip lab_nat {");
  });

  it('IPv4 only by default: IPv6 disabled in every namespace, no IPv6 address, route or rule', () => {
    const cmds = plan.steps.map((s) => s.argv.join(' '));
    for (const ns of plan.namespaces) expect(cmds).toContain(`ip netns exec ${ns} sh -c echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6`);
    expect(cmds.filter((c) => / -6 |echo 0 > \/proc\/sys\/net\/ipv6\/conf\/[a-z0-9]+\/disable_ipv6/.test(c))).toEqual([]);
    expect(plan.steps.filter((s) => s.stdin?.includes('ip6'))).toEqual([]);
    expect(plan.portMappers).toEqual([]);
    expect(plan.stunResponder).toBeUndefined();
  });

  it('routers keep LAN switching out of their IP hooks (no br_netfilter)', () => {
    const cmds = plan.steps.map((s) => s.argv.join(' '));
    for (const r of ['cg', 'home']) {
      expect(cmds).toContain(`ip netns exec mlab1x1-${r} sh -c echo 0 > /proc/sys/net/bridge/bridge-nf-call-iptables`);
      expect(cmds).toContain(`ip netns exec mlab1x1-${r} sh -c echo 0 > /proc/sys/net/bridge/bridge-nf-call-ip6tables`);
    }
  });

  it('rejects bad descriptions and prefixes', () => {
    expect(validateSpec({ routers: [{ name: 'r', nat: 'port-restricted', upstream: 's' }, { name: 's', nat: 'port-restricted', upstream: 'r' }], hosts: [] }).join()).toMatch(/cycle/);
    expect(validateSpec({ routers: [], hosts: [{ name: 'h', attach: 'nowhere' }] }).join()).toMatch(/unknown attachment/);
    expect(validateSpec({ routers: [], hosts: [{ name: 'h', attach: 'internet' }, { name: 'h', attach: 'internet' }] }).join()).toMatch(/twice/);
    expect(validateSpec({ routers: [], hosts: [{ name: 'Bad_Name', attach: 'internet' }] }).join()).toMatch(/must match/);
    expect(validateSpec({ routers: [], hosts: [{ name: 'h', attach: 'internet', link: { lossPct: 2.5 } }] }).join()).toMatch(/lossPct/);
    expect(validateSpec({ routers: [], hosts: [{ name: 'h', attach: 'internet', link: { delayMs: -1 } }] }).join()).toMatch(/delayMs/);
    const one = (r: Partial<LabSpec['routers'][number]>, hosts: LabSpec['hosts'] = []): string =>
      validateSpec({ routers: [{ name: 'r', nat: 'port-restricted', ...r }, { name: 'up', nat: 'port-restricted' }], hosts }).join();
    expect(one({ ipv6: true, upstream: 'up' })).toMatch(/IPv6 only on routers attached to the Internet/);
    expect(one({ nat: 'ipv6-firewall', upstream: 'up' })).toMatch(/IPv6 only/);
    expect(validateSpec({ routers: [{ name: 'f', nat: 'ipv6-firewall' }, { name: 'r', nat: 'port-restricted', upstream: 'f' }], hosts: [] }).join()).toMatch(/cannot carry the IPv4 router r/);
    for (const t of [0, 1.5, 3601, -1]) expect(one({ udpIdleTimeoutSec: t })).toMatch(/udpIdleTimeoutSec/);
    expect(one({ udpIdleTimeoutSec: 30 })).toBe('');
    expect(one({ nat: 'ipv6-firewall', hairpin: true })).toMatch(/hairpin needs an IPv4 NAT/);
    expect(one({ nat: 'udp-blocked', hairpin: true })).toMatch(/hairpin is UDP only/);
    for (const nat of ['address-restricted', 'udp-blocked', 'ipv6-firewall'] as const) expect(one({ nat, portMapping: true })).toMatch(/portMapping needs nat symmetric or port-restricted/);
    expect(one({ nat: 'symmetric', portMapping: true, hairpin: true })).toMatch(/portMapping and hairpin/);
    expect(one({ nat: 'symmetric', portMapping: true, upstream: 'up' })).toMatch(/port-mapping router must be attached to the Internet/);
    expect(one({}, [{ name: 'h', attach: 'r', family: 'dual' }])).toMatch(/family is set by its router/);
    expect(() => planLab({ routers: [], hosts: [{ name: 'h', attach: 'x' }] }, 'p-')).toThrow(/invalid lab description/);
    expect(() => planLab(SPEC, 'Bad Prefix')).toThrow(/prefix/);
  });
});

const cmds = (plan: Plan): string[] => plan.steps.map((s) => s.argv.join(' '));

describe('lab planner: IPv6', () => {
  const spec: LabSpec = {
    routers: [{ name: 'fw', nat: 'ipv6-firewall' }, { name: 'ds', nat: 'symmetric', ipv6: true }, { name: 'v4', nat: 'port-restricted' }],
    hosts: [
      { name: 'relay', attach: 'internet', family: 'dual' },
      { name: 'only6', attach: 'internet', family: 'ipv6' },
      { name: 'x', attach: 'fw' }, { name: 'y', attach: 'fw' }, { name: 'd', attach: 'ds' }, { name: 'h', attach: 'v4' },
    ],
  };
  const plan = planLab(spec, 'mlab1x2-');
  const node = (n: string) => plan.nodes.get(n)!;

  it('addresses from 2001:db8::/32 and fd00::/8 only, with the IPv4 numbering', () => {
    // Internet links 1..5 in spec order (routers, then hosts); router r's LAN is 2001:db8:r::/64
    expect(node('fw').lanAddress).toBeUndefined();
    expect(node('fw')).toMatchObject({ family: 'ipv6', address: undefined, address6: '2001:db8:0:1::2', lanAddress6: '2001:db8:1::1' });
    expect(node('ds')).toMatchObject({ family: 'dual', address: '198.18.2.2', address6: '2001:db8:0:2::2', lanAddress: '10.2.0.1', lanAddress6: '2001:db8:2::1' });
    expect(node('v4')).toMatchObject({ family: 'ipv4', address: '198.18.3.2', address6: undefined });
    expect(node('relay')).toMatchObject({ family: 'dual', address: '198.18.4.2', address6: '2001:db8:0:4::2' });
    expect(node('only6')).toMatchObject({ family: 'ipv6', address: undefined, address6: '2001:db8:0:5::2' });
    expect(node('x')).toMatchObject({ family: 'ipv6', address: undefined, address6: '2001:db8:1::10', ula: 'fd00:0:0:1::10' });
    expect(node('y')).toMatchObject({ address6: '2001:db8:1::11', ula: 'fd00:0:0:1::11' });
    expect(node('d')).toMatchObject({ family: 'dual', address: '10.2.0.10', address6: '2001:db8:2::10', ula: 'fd00:0:0:2::10' });
    expect(node('h')).toMatchObject({ family: 'ipv4', address6: undefined, ula: undefined });
    for (const l of plan.links) for (const a of [l.childAddr6, l.parentAddr6]) if (a !== undefined) expect(a).toMatch(/^2001:db8:/);
    expect(() => publicAddressOf(plan, spec, 'x')).toThrow(/no IPv4 address/);
  });

  it('IPv6 only on the interfaces of nodes that have it, without DAD; addresses nodad', () => {
    const c = cmds(plan);
    const enabled = c.filter((x) => /echo 0 > \/proc\/sys\/net\/ipv6\/conf\/[a-z0-9]+\/disable_ipv6/.test(x));
    const ifs = enabled.map((x) => `${x.split(' ')[3]!.slice('mlab1x2-'.length)}/${/conf\/([a-z0-9]+)\//.exec(x)![1]}`).sort();
    // fw: lan + wan, ds: lan + wan, relay, only6, x, y, d: eth0; the Internet side n1, n2, n4, n5 — not v4's n3, not h
    expect(ifs).toEqual(['0inet/n1', '0inet/n2', '0inet/n4', '0inet/n5', 'd/eth0', 'ds/lan', 'ds/wan', 'fw/lan', 'fw/wan', 'only6/eth0', 'relay/eth0', 'x/eth0', 'y/eth0'].sort());
    for (const x of enabled) expect(c[c.indexOf(x) - 1]).toMatch(/accept_dad$/);
    for (const x of c.filter((y) => y.includes(' -6 addr add '))) expect(x).toMatch(/\/64 dev [a-z0-9]+ nodad$/);
    expect(c).toContain('ip -n mlab1x2-x -6 addr add fd00:0:0:1::10/64 dev eth0 nodad');
    expect(c).toContain('ip -n mlab1x2-fw -6 addr add fd00:0:0:1::1/64 dev lan nodad');
    expect(c).toContain('ip -n mlab1x2-fw link add lan type bridge mcast_snooping 0');
    expect(c).toContain('ip -n mlab1x2-v4 link add lan type bridge');
  });

  it('routes: default per family; the Internet routes each LAN prefix to its router; forwarding per family', () => {
    const c = cmds(plan);
    expect(c).toContain('ip -n mlab1x2-x -6 route add default via 2001:db8:1::1');
    expect(c).toContain('ip -n mlab1x2-fw -6 route add default via 2001:db8:0:1::1');
    expect(c).toContain('ip -n mlab1x2-d route add default via 10.2.0.1');
    expect(c).toContain('ip -n mlab1x2-d -6 route add default via 2001:db8:2::1');
    expect(c.filter((x) => x.startsWith('ip -n mlab1x2-0inet -6 route add'))).toEqual([
      'ip -n mlab1x2-0inet -6 route add 2001:db8:1::/64 via 2001:db8:0:1::2',
      'ip -n mlab1x2-0inet -6 route add 2001:db8:2::/64 via 2001:db8:0:2::2',
    ]);
    expect(c.filter((x) => x.includes(' route add default') && x.startsWith('ip -n mlab1x2-x '))).toHaveLength(1); // no IPv4 route
    const fwd6 = c.filter((x) => x.endsWith('/proc/sys/net/ipv6/conf/all/forwarding')).map((x) => x.split(' ')[3]);
    expect(fwd6).toEqual(['mlab1x2-0inet', 'mlab1x2-fw', 'mlab1x2-ds']);
    const fwd4 = c.filter((x) => x.endsWith('/proc/sys/net/ipv4/ip_forward')).map((x) => x.split(' ')[3]);
    expect(fwd4).toEqual(['mlab1x2-0inet', 'mlab1x2-ds', 'mlab1x2-v4']);
  });

  it('rule sets: an ipv6-firewall router gets only the IPv6 firewall; a dual-stack router both', () => {
    const tables = (ns: string): string[] => plan.steps.filter((s) => s.argv[3] === ns && s.stdin).map((s) => /^table (\S+ \S+)/.exec(s.stdin!)![1]!);
    expect(tables('mlab1x2-fw')).toEqual(['ip6 lab_fw6']);
    expect(tables('mlab1x2-ds')).toEqual(['ip lab_nat', 'ip6 lab_fw6']);
    expect(tables('mlab1x2-v4')).toEqual(['ip lab_nat']);
  });
});

describe('lab planner: router options', () => {
  const spec: LabSpec = {
    routers: [
      { name: 'hp', nat: 'port-restricted', hairpin: true, isolateLan: true, udpIdleTimeoutSec: 30 },
      { name: 'pm', nat: 'symmetric', portMapping: true },
      { name: 'pm2', nat: 'port-restricted', portMapping: true },
    ],
    hosts: [{ name: 'a', attach: 'hp' }, { name: 'b', attach: 'hp' }, { name: 'm', attach: 'pm' }, { name: 'n', attach: 'pm2' }],
  };
  const plan = planLab(spec, 'mlab1x3-');

  it('isolated LAN ports; no ICMP redirects from a hairpinning router', () => {
    const c = cmds(plan);
    expect(c.filter((x) => x.includes('isolated on'))).toEqual([
      'ip -n mlab1x3-hp link set dev p0 type bridge_slave isolated on',
      'ip -n mlab1x3-hp link set dev p1 type bridge_slave isolated on',
    ]);
    expect(c).toContain('ip netns exec mlab1x3-hp sh -c echo 0 > /proc/sys/net/ipv4/conf/all/send_redirects');
    expect(c).toContain('ip netns exec mlab1x3-hp sh -c echo 0 > /proc/sys/net/ipv4/conf/lan/send_redirects');
    expect(c.filter((x) => x.includes('send_redirects') && !x.includes('mlab1x3-hp '))).toEqual([]);
  });

  it('the NAT rule set gets the router\'s options and its WAN address', () => {
    const nat = plan.steps.find((s) => s.argv[3] === 'mlab1x3-hp' && s.stdin?.startsWith('table ip lab_nat'))!.stdin!;
    expect(nat).toContain('ip daddr 198.18.1.2 dnat ip to udp dport map @mapped_udp');
    expect(nat).toContain('policy = { unreplied: 30, replied: 30 }');
  });

  it('a port-mapping router: miniupnpd tables, a port mapper with its LAN and STUN server, one STUN responder on the Internet', () => {
    expect(plan.portMappers).toEqual([
      { router: 'pm', ns: 'mlab1x3-pm', lanSubnet: '10.2.0.0/24', stunHost: '198.18.2.1' },
      { router: 'pm2', ns: 'mlab1x3-pm2', lanSubnet: '10.3.0.0/24', stunHost: '198.18.3.1' },
    ]);
    expect(plan.stunResponder).toEqual({ ns: 'mlab1x3-0inet', port: 3478 });
    const upnp = plan.steps.filter((s) => s.stdin?.startsWith('table inet lab_upnp')).map((s) => s.argv[3]);
    expect(upnp).toEqual(['mlab1x3-pm', 'mlab1x3-pm2']);
    // the pinholes pass the router's own forward filter
    expect(plan.steps.find((s) => s.argv[3] === 'mlab1x3-pm' && s.stdin?.startsWith('table ip lab_nat'))!.stdin).toContain('iifname "wan" ct status dnat accept');
  });
});

describe('rows of features in flight (reach-rows.ts)', () => {
  it('every row describes a lab that plans, with its parties and relays on nodes of it', () => {
    expect(REACH_ROWS.length).toBeGreaterThanOrEqual(6);
    for (const row of REACH_ROWS) {
      expect(validateSpec(row.spec), row.title).toEqual([]);
      const plan = planLab(row.spec, 'mlab1x9-');
      for (const n of [...row.parties, ...(row.relays ?? ['relay'])]) expect(plan.nodes.get(n)?.kind, `${row.title}: ${n}`).toBe('host');
      // an IPv6 relay address needs a relay with IPv6
      if (row.relayFamily === 6) for (const r of row.relays ?? ['relay']) expect(plan.nodes.get(r)!.address6, row.title).toBeDefined();
    }
  });
});
