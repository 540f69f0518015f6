// Turns a LabSpec into the exact commands that build it (pure: no I/O, unit-testable
// without root). Executing the plan is lab.ts's job.
//
// Layout
// - Every node is a network namespace `${prefix}${name}`; the Internet is
//   `${prefix}0inet` (node names start with a letter, so no clash), a link's delay
//   bridge lives in `${prefix}0d${linkId}`.
// - Internet link k (k = 1, 2, …, one per node attached to the Internet):
//   subnet 198.18.k.0/24, Internet side interface `n${k}` = 198.18.k.1, node side .2;
//   if the node has IPv6: 2001:db8:0:k::/64, Internet side ::1, node side ::2.
// - Router number r (1-based, in spec order) has a bridge `lan` with address .1 on its
//   LAN subnet: 100.64.r.0/24 if other routers sit behind it (a carrier NAT), else
//   10.r.0.0/24 (a home LAN). LAN member m (0-based, routers first then hosts, each in
//   spec order) is at .(10 + m); the router side of its veth is `p${m}` in the bridge.
//   An IPv6 router's LAN also has the global 2001:db8:r::/64 (routed to the router's WAN
//   by the Internet router; no NAT) and the ULA fd00:0:0:r::/64, router ::1, member m at
//   ::(10 + m) (the same digits as in IPv4, read as hex).
// - A router's upstream interface is `wan`, a host's only interface is `eth0`; each
//   has a default route (per family) via its upstream's address on that link.
// - IPv6 exists only on the interfaces of nodes that have it (link-local included),
//   without duplicate address detection (addresses are usable at once); everywhere else
//   it is disabled, so no link-local candidate bypasses a NAT.
// - A link with delay/jitter is two veth pairs through the middle namespace: child end
//   ↔ `a` … `b` ↔ parent end; delay-bridge moves frames between `a` and `b`.
import { INTERNET, familyOf, hasV4, hasV6, routerFamily, validateSpec, type Family, type LabSpec, type LinkImpairment, type NatKind } from './spec.js';
import { firewall6Ruleset, lossRuleset, natRuleset, upnpRuleset, type Ipv4NatKind } from './rulesets.js';
import { STUN_RESPONDER_PORT } from './miniupnpd.js';

export interface Step {
  argv: string[];
  /** text written to the command's stdin (nft -f -) */
  stdin?: string;
}

export interface PlannedLink {
  id: number;
  child: string;
  parent: string;
  childNs: string;
  parentNs: string;
  childIf: string;
  parentIf: string;
  /** IPv4 ends (absent on an IPv6-only link) */
  childAddr?: string;
  parentAddr?: string;
  prefixLen: number;
  /** IPv6 ends (global), if the child has IPv6 */
  childAddr6?: string;
  parentAddr6?: string;
  impairment?: LinkImpairment;
  /** namespace of the delay bridge, if the link has delay or jitter */
  midNs?: string;
}

export interface PlannedBridge {
  ns: string;
  a: string;
  b: string;
  delayUs: number;
  jitterUs: number;
  seed: number;
}

/** A miniupnpd to start in a router (lab.ts; its configuration: miniupnpd.ts). */
export interface PlannedPortMapper {
  router: string;
  ns: string;
  /** the router's LAN, a.b.c.0/24: the hosts allowed to ask for mappings */
  lanSubnet: string;
  /** the STUN responder it asks for its public address (the far end of its WAN link) */
  stunHost: string;
}

export interface PlannedNode {
  name: string;
  kind: 'internet' | 'router' | 'host';
  ns: string;
  family: Family;
  /** the node's IPv4 address on its upstream link (hosts: their only address) */
  address?: string;
  /** its global IPv6 address on its upstream link */
  address6?: string;
  /** a LAN host's unique-local IPv6 address */
  ula?: string;
  /** routers: the addresses of their LAN bridge */
  lanAddress?: string;
  lanAddress6?: string;
  nat?: NatKind;
}

export interface Plan {
  prefix: string;
  nodes: Map<string, PlannedNode>;
  links: PlannedLink[];
  namespaces: string[];
  steps: Step[];
  bridges: PlannedBridge[];
  portMappers: PlannedPortMapper[];
  /** the Internet-side STUN responder miniupnpd asks for its public address (lab.ts) */
  stunResponder?: { ns: string; port: number };
}

export const INTERNET_NS_SUFFIX = '0inet';

const sysctl = (ns: string, key: string, value: string): Step => ({
  // the key's separators are dots; interface names here never contain one
  argv: ['ip', 'netns', 'exec', ns, 'sh', '-c', `echo ${value} > /proc/sys/${key.replace(/\./g, '/')}`],
});

/** IPv6 on one interface: without DAD (the address is usable at once), then enabled. */
const enableV6 = (ns: string, dev: string): Step[] => [
  sysctl(ns, `net.ipv6.conf.${dev}.accept_dad`, '0'),
  sysctl(ns, `net.ipv6.conf.${dev}.disable_ipv6`, '0'),
];
const addr6 = (ns: string, a: string, dev: string): Step => ({ argv: ['ip', '-n', ns, '-6', 'addr', 'add', `${a}/64`, 'dev', dev, 'nodad'] });

interface Lan { base4?: string; global6?: string; ula6?: string }

export function planLab(spec: LabSpec, prefix: string): Plan {
  const problems = validateSpec(spec);
  if (problems.length > 0) throw new Error(`invalid lab description: ${problems.join('; ')}`);
  if (!/^[a-z0-9-]{1,24}$/.test(prefix)) throw new Error(`bad namespace prefix ${JSON.stringify(prefix)}`);

  const nodes = new Map<string, PlannedNode>();
  const inetNs = prefix + INTERNET_NS_SUFFIX;
  nodes.set(INTERNET, { name: INTERNET, kind: 'internet', ns: inetNs, family: 'dual' });
  spec.routers.forEach((r) => nodes.set(r.name, { name: r.name, kind: 'router', ns: prefix + r.name, nat: r.nat, family: routerFamily(r) }));
  spec.hosts.forEach((h) => nodes.set(h.name, { name: h.name, kind: 'host', ns: prefix + h.name, family: familyOf(spec, h.name) }));

  const steps: Step[] = [];
  const namespaces = [...nodes.values()].map((n) => n.ns);
  for (const ns of namespaces) {
    steps.push({ argv: ['ip', 'netns', 'add', ns] });
    steps.push({ argv: ['ip', '-n', ns, 'link', 'set', 'lo', 'up'] });
    // no IPv6 on the lab's links unless a node asks for it (lo keeps ::1, which the
    // agent's listeners use): the agent must not find link-local candidates that bypass
    // the NATs. Interfaces created later inherit these defaults.
    steps.push(sysctl(ns, 'net.ipv6.conf.default.disable_ipv6', '1'));
    steps.push(sysctl(ns, 'net.ipv6.conf.default.accept_dad', '0'));
  }
  for (const n of nodes.values()) {
    if (n.kind === 'host') continue;
    if (hasV4(n.family)) steps.push(sysctl(n.ns, 'net.ipv4.ip_forward', '1'));
    if (hasV6(n.family)) steps.push(sysctl(n.ns, 'net.ipv6.conf.all.forwarding', '1'));
    // frames switched between LAN ports stay out of the router's IP hooks, as on a home
    // router's switch (br_netfilter would otherwise run them through conntrack and NAT,
    // and a routed packet's input interface would be the bridge port, not `lan`)
    if (n.kind === 'router') steps.push(sysctl(n.ns, 'net.bridge.bridge-nf-call-iptables', '0'), sysctl(n.ns, 'net.bridge.bridge-nf-call-ip6tables', '0'));
  }

  // Routers' LAN bridges and subnets.
  const lans = new Map<string, Lan>();
  spec.routers.forEach((r, i) => {
    const no = i + 1;
    const node = nodes.get(r.name)!;
    const carrier = spec.routers.some((x) => x.upstream === r.name);
    const lan: Lan = {};
    if (hasV4(node.family)) lan.base4 = carrier ? `100.64.${no}` : `10.${no}.0`;
    if (hasV6(node.family)) { lan.global6 = `2001:db8:${no}::`; lan.ula6 = `fd00:0:0:${no}::`; }
    lans.set(r.name, lan);
    // multicast snooping off: without an MLD querier the bridge may stop flooding the
    // solicited-node groups neighbour discovery needs
    steps.push({ argv: ['ip', '-n', node.ns, 'link', 'add', 'lan', 'type', 'bridge', ...(lan.global6 ? ['mcast_snooping', '0'] : [])] });
    if (lan.base4) {
      node.lanAddress = `${lan.base4}.1`;
      steps.push({ argv: ['ip', '-n', node.ns, 'addr', 'add', `${lan.base4}.1/24`, 'dev', 'lan'] });
    }
    if (lan.global6) {
      node.lanAddress6 = `${lan.global6}1`;
      steps.push(...enableV6(node.ns, 'lan'), addr6(node.ns, `${lan.global6}1`, 'lan'), addr6(node.ns, `${lan.ula6!}1`, 'lan'));
    }
    if (r.hairpin) {
      // a hairpinned packet leaves by the interface it came in on: no ICMP redirect
      // telling the sender to go to the other host directly (there is no LAN path)
      steps.push(sysctl(node.ns, 'net.ipv4.conf.all.send_redirects', '0'), sysctl(node.ns, 'net.ipv4.conf.lan.send_redirects', '0'));
    }
    steps.push({ argv: ['ip', '-n', node.ns, 'link', 'set', 'lan', 'up'] });
  });

  // Links: one per non-Internet node, to its parent.
  const links: PlannedLink[] = [];
  const bridges: PlannedBridge[] = [];
  const internetRoutes6: Step[] = [];
  let inetK = 0;
  const lanMembers = new Map<string, number>();
  const children: { name: string; parent: string; impairment?: LinkImpairment; ifName: string }[] = [
    ...spec.routers.map((r) => ({ name: r.name, parent: r.upstream ?? INTERNET, impairment: r.wan, ifName: 'wan' })),
    ...spec.hosts.map((h) => ({ name: h.name, parent: h.attach, impairment: h.link, ifName: 'eth0' })),
  ];
  for (const c of children) {
    const id = links.length + 1;
    const node = nodes.get(c.name)!;
    const v4 = hasV4(node.family); const v6 = hasV6(node.family);
    let parentIf: string;
    let childAddr: string | undefined; let parentAddr: string | undefined;
    let childAddr6: string | undefined; let parentAddr6: string | undefined; let ula: string | undefined;
    if (c.parent === INTERNET) {
      inetK++;
      parentIf = `n${inetK}`;
      if (v4) { parentAddr = `198.18.${inetK}.1`; childAddr = `198.18.${inetK}.2`; }
      if (v6) { parentAddr6 = `2001:db8:0:${inetK}::1`; childAddr6 = `2001:db8:0:${inetK}::2`; }
    } else {
      const m = lanMembers.get(c.parent) ?? 0;
      lanMembers.set(c.parent, m + 1);
      parentIf = `p${m}`;
      const lan = lans.get(c.parent)!;
      if (v4) { parentAddr = `${lan.base4!}.1`; childAddr = `${lan.base4!}.${10 + m}`; }
      if (v6) { parentAddr6 = `${lan.global6!}1`; childAddr6 = `${lan.global6!}${10 + m}`; ula = `${lan.ula6!}${10 + m}`; }
    }
    const childNs = node.ns;
    const parentNs = nodes.get(c.parent)!.ns;
    node.address = childAddr;
    node.address6 = childAddr6;
    node.ula = ula;
    const imp = c.impairment;
    const delayed = imp !== undefined && ((imp.delayMs ?? 0) > 0 || (imp.jitterMs ?? 0) > 0);
    const link: PlannedLink = { id, child: c.name, parent: c.parent, childNs, parentNs, childIf: c.ifName, parentIf, childAddr, parentAddr, prefixLen: 24, childAddr6, parentAddr6, impairment: imp };
    if (delayed) {
      const mid = `${prefix}0d${id}`;
      link.midNs = mid;
      namespaces.push(mid);
      steps.push({ argv: ['ip', 'netns', 'add', mid] });
      steps.push(sysctl(mid, 'net.ipv6.conf.default.disable_ipv6', '1'));
      steps.push({ argv: ['ip', '-n', childNs, 'link', 'add', c.ifName, 'type', 'veth', 'peer', 'name', 'a', 'netns', mid] });
      steps.push({ argv: ['ip', '-n', parentNs, 'link', 'add', parentIf, 'type', 'veth', 'peer', 'name', 'b', 'netns', mid] });
      for (const d of ['a', 'b']) steps.push({ argv: ['ip', '-n', mid, 'link', 'set', 'dev', d, 'up'] });
      // a veth hands AF_PACKET frames whose checksum is left to offload; without this the
      // bridged UDP/TCP frames arrive with bad checksums and are dropped
      steps.push({ argv: ['ip', 'netns', 'exec', childNs, 'ethtool', '-K', c.ifName, 'tx', 'off'] });
      steps.push({ argv: ['ip', 'netns', 'exec', parentNs, 'ethtool', '-K', parentIf, 'tx', 'off'] });
      bridges.push({ ns: mid, a: 'a', b: 'b', delayUs: Math.round((imp.delayMs ?? 0) * 1000), jitterUs: Math.round((imp.jitterMs ?? 0) * 1000), seed: id });
    } else {
      steps.push({ argv: ['ip', '-n', childNs, 'link', 'add', c.ifName, 'type', 'veth', 'peer', 'name', parentIf, 'netns', parentNs] });
    }
    if (c.parent !== INTERNET) {
      steps.push({ argv: ['ip', '-n', parentNs, 'link', 'set', 'dev', parentIf, 'master', 'lan'] });
      if (spec.routers.find((r) => r.name === c.parent)!.isolateLan) {
        steps.push({ argv: ['ip', '-n', parentNs, 'link', 'set', 'dev', parentIf, 'type', 'bridge_slave', 'isolated', 'on'] });
      }
    } else {
      if (parentAddr) steps.push({ argv: ['ip', '-n', parentNs, 'addr', 'add', `${parentAddr}/24`, 'dev', parentIf] });
      if (parentAddr6) steps.push(...enableV6(parentNs, parentIf), addr6(parentNs, parentAddr6, parentIf));
    }
    if (childAddr) steps.push({ argv: ['ip', '-n', childNs, 'addr', 'add', `${childAddr}/24`, 'dev', c.ifName] });
    if (childAddr6) {
      steps.push(...enableV6(childNs, c.ifName), addr6(childNs, childAddr6, c.ifName));
      if (ula) steps.push(addr6(childNs, ula, c.ifName));
    }
    steps.push({ argv: ['ip', '-n', childNs, 'link', 'set', 'dev', c.ifName, 'up'] });
    steps.push({ argv: ['ip', '-n', parentNs, 'link', 'set', 'dev', parentIf, 'up'] });
    if (parentAddr) steps.push({ argv: ['ip', '-n', childNs, 'route', 'add', 'default', 'via', parentAddr] });
    if (parentAddr6) steps.push({ argv: ['ip', '-n', childNs, '-6', 'route', 'add', 'default', 'via', parentAddr6] });
    const lan6 = lans.get(c.name)?.global6;
    if (c.parent === INTERNET && lan6) internetRoutes6.push({ argv: ['ip', '-n', inetNs, '-6', 'route', 'add', `${lan6}/64`, 'via', childAddr6!] });
    if (imp?.lossPct) {
      steps.push({ argv: ['ip', 'netns', 'exec', childNs, 'nft', '-f', '-'], stdin: lossRuleset(c.ifName, imp.lossPct) });
      steps.push({ argv: ['ip', 'netns', 'exec', parentNs, 'nft', '-f', '-'], stdin: lossRuleset(parentIf, imp.lossPct) });
    }
    if (imp?.rateMbit) {
      for (const [ns, dev] of [[childNs, c.ifName], [parentNs, parentIf]] as const) {
        steps.push({ argv: ['ip', 'netns', 'exec', ns, 'tc', 'qdisc', 'add', 'dev', dev, 'root', 'tbf', 'rate', `${imp.rateMbit}mbit`, 'burst', '64kb', 'latency', '100ms'] });
      }
    }
    links.push(link);
  }
  steps.push(...internetRoutes6);

  const portMappers: PlannedPortMapper[] = [];
  for (const r of spec.routers) {
    const node = nodes.get(r.name)!;
    const nft = (stdin: string): Step => ({ argv: ['ip', 'netns', 'exec', node.ns, 'nft', '-f', '-'], stdin });
    if (r.nat !== 'ipv6-firewall') {
      steps.push(nft(natRuleset({ nat: r.nat as Ipv4NatKind, wanAddress: node.address!, hairpin: r.hairpin, udpIdleTimeoutSec: r.udpIdleTimeoutSec, portMapping: r.portMapping })));
    }
    if (hasV6(node.family)) steps.push(nft(firewall6Ruleset({ udpIdleTimeoutSec: r.udpIdleTimeoutSec })));
    if (r.portMapping) {
      steps.push(nft(upnpRuleset()));
      const link = links.find((l) => l.child === r.name)!;
      portMappers.push({ router: r.name, ns: node.ns, lanSubnet: `${lans.get(r.name)!.base4!}.0/24`, stunHost: link.parentAddr! });
    }
  }
  const stunResponder = portMappers.length > 0 ? { ns: inetNs, port: STUN_RESPONDER_PORT } : undefined;
  return { prefix, nodes, links, namespaces, steps, bridges, portMappers, stunResponder };
}

/** The IPv4 address the Internet sees for a node: its own if public, else its outermost NAT's. */
export function publicAddressOf(plan: Plan, spec: LabSpec, name: string): string {
  const host = spec.hosts.find((h) => h.name === name);
  let cur = host ? host.attach : name;
  const v4 = (node: string): string => {
    const a = plan.nodes.get(node)?.address;
    if (a === undefined) throw new Error(`${name} has no IPv4 address`);
    return a;
  };
  if (host && cur === INTERNET) return v4(name);
  for (;;) {
    const r = spec.routers.find((x) => x.name === cur);
    if (!r) throw new Error(`no node ${name}`);
    const up = r.upstream ?? INTERNET;
    if (up === INTERNET) return v4(r.name);
    cur = up;
  }
}

/** The plan as a shell script (for docs and for debugging a failed run by hand). */
export function planToShell(plan: Plan): string {
  const q = (s: string): string => (/^[A-Za-z0-9_./:@%+=,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
  return plan.steps.map((s) => (s.stdin !== undefined ? `${s.argv.map(q).join(' ')} <<'EOF'\n${s.stdin}EOF` : s.argv.map(q).join(' '))).join('\n') + '\n';
}
