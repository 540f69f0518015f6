// Turns a LabSpec into the exact commands that build it (pure: no I/O, unit-testable
// without root). Executing the plan is lab.ts's job.
//
// Layout
// - Every node is a network namespace `${prefix}${name}`; the Internet is
//   `${prefix}0inet` (node names start with a letter, so no clash), a link's delay
//   bridge lives in `${prefix}0d${linkId}`.
// - Internet link k (k = 1, 2, …, one per node attached to the Internet):
//   subnet 198.18.k.0/24, Internet side interface `n${k}` = 198.18.k.1, node side .2.
// - Router number r (1-based, in spec order) has a bridge `lan` with address .1 on its
//   LAN subnet: 100.64.r.0/24 if other routers sit behind it (a carrier NAT), else
//   10.r.0.0/24 (a home LAN). LAN member m (0-based, routers first then hosts, each in
//   spec order) is at .(10 + m); the router side of its veth is `p${m}` in the bridge.
// - A router's upstream interface is `wan`, a host's only interface is `eth0`; each
//   has a default route via its upstream's address on that link.
// - A link with delay/jitter is two veth pairs through the middle namespace: child end
//   ↔ `a` … `b` ↔ parent end; delay-bridge moves frames between `a` and `b`.
import { INTERNET, validateSpec, type LabSpec, type LinkImpairment, type NatKind } from './spec.js';

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
  childAddr: string;
  parentAddr: string;
  prefixLen: number;
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

export interface PlannedNode {
  name: string;
  kind: 'internet' | 'router' | 'host';
  ns: string;
  /** the node's address on its upstream link (hosts: their only address) */
  address?: string;
  /** routers: the address of their LAN bridge */
  lanAddress?: string;
  nat?: NatKind;
}

export interface Plan {
  prefix: string;
  nodes: Map<string, PlannedNode>;
  links: PlannedLink[];
  namespaces: string[];
  steps: Step[];
  bridges: PlannedBridge[];
}

export const INTERNET_NS_SUFFIX = '0inet';

export function natRuleset(nat: NatKind): string {
  // ip family: the lab is IPv4 only. The input/forward filters make the router drop
  // new unsolicited packets arriving on its WAN side, as home routers do; without them a
  // peer's first punch packet creates a conntrack entry on the router itself that can
  // collide with the host's mapping (DESIGN.md §4).
  const masq = nat === 'symmetric' ? 'masquerade fully-random' : 'masquerade';
  const udpDrop = nat === 'udp-blocked' ? '    meta l4proto udp counter drop\n' : '';
  return [
    'table ip lab_nat {',
    '  chain nat_post {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    `    oifname "wan" ${masq}`,
    '  }',
    '  chain filter_forward {',
    '    type filter hook forward priority filter; policy accept;',
    udpDrop +
    '    iifname "wan" ct state established,related accept',
    '    iifname "wan" counter drop',
    '  }',
    '  chain filter_input {',
    '    type filter hook input priority filter; policy accept;',
    '    iifname "wan" ct state established,related accept',
    '    iifname "wan" counter drop',
    '  }',
    '}',
    '',
  ].join('\n');
}

/** Loss on frames arriving on `dev` (netdev ingress: before routing or bridging, and
 * it never makes a local sendto() fail as an output-path drop would). */
export function lossRuleset(dev: string, pct: number): string {
  return [
    `table netdev lab_loss_${dev} {`,
    '  chain loss_in {',
    `    type filter hook ingress device "${dev}" priority 0; policy accept;`,
    `    numgen random mod 100 < ${pct} counter drop`,
    '  }',
    '}',
    '',
  ].join('\n');
}

/** A rule set that drops everything between two addresses (both directions): the
 * "direct path blackholed" fault. Loaded on the Internet router. */
export function blackholeRuleset(table: string, a: string, b: string): string {
  return [
    `table ip ${table} {`,
    '  chain filter_forward {',
    '    type filter hook forward priority -10; policy accept;',
    `    ip saddr ${a} ip daddr ${b} counter drop`,
    `    ip saddr ${b} ip daddr ${a} counter drop`,
    '  }',
    '}',
    '',
  ].join('\n');
}

const sysctl = (ns: string, key: string, value: string): Step => ({
  argv: ['ip', 'netns', 'exec', ns, 'sh', '-c', `echo ${value} > /proc/sys/${key.replace(/\./g, '/')}`],
});

export function planLab(spec: LabSpec, prefix: string): Plan {
  const problems = validateSpec(spec);
  if (problems.length > 0) throw new Error(`invalid lab description: ${problems.join('; ')}`);
  if (!/^[a-z0-9-]{1,24}$/.test(prefix)) throw new Error(`bad namespace prefix ${JSON.stringify(prefix)}`);

  const nodes = new Map<string, PlannedNode>();
  const inetNs = prefix + INTERNET_NS_SUFFIX;
  nodes.set(INTERNET, { name: INTERNET, kind: 'internet', ns: inetNs });
  spec.routers.forEach((r) => nodes.set(r.name, { name: r.name, kind: 'router', ns: prefix + r.name, nat: r.nat }));
  spec.hosts.forEach((h) => nodes.set(h.name, { name: h.name, kind: 'host', ns: prefix + h.name }));

  const steps: Step[] = [];
  const namespaces = [...nodes.values()].map((n) => n.ns);
  for (const ns of namespaces) {
    steps.push({ argv: ['ip', 'netns', 'add', ns] });
    steps.push({ argv: ['ip', '-n', ns, 'link', 'set', 'lo', 'up'] });
    // no IPv6 on the lab's links (lo keeps ::1, which the agent's listeners use): the
    // agent must not find link-local candidates that bypass the NATs
    steps.push(sysctl(ns, 'net.ipv6.conf.default.disable_ipv6', '1'));
  }
  for (const n of nodes.values()) if (n.kind !== 'host') steps.push(sysctl(n.ns, 'net.ipv4.ip_forward', '1'));

  // Routers' LAN bridges and subnets.
  const routerNo = new Map<string, number>();
  spec.routers.forEach((r, i) => routerNo.set(r.name, i + 1));
  const lanBase = new Map<string, string>();
  for (const r of spec.routers) {
    const no = routerNo.get(r.name)!;
    const carrier = spec.routers.some((x) => x.upstream === r.name);
    const base = carrier ? `100.64.${no}` : `10.${no}.0`;
    lanBase.set(r.name, base);
    const node = nodes.get(r.name)!;
    node.lanAddress = `${base}.1`;
    steps.push({ argv: ['ip', '-n', node.ns, 'link', 'add', 'lan', 'type', 'bridge'] });
    steps.push({ argv: ['ip', '-n', node.ns, 'addr', 'add', `${base}.1/24`, 'dev', 'lan'] });
    steps.push({ argv: ['ip', '-n', node.ns, 'link', 'set', 'lan', 'up'] });
  }

  // Links: one per non-Internet node, to its parent.
  const links: PlannedLink[] = [];
  const bridges: PlannedBridge[] = [];
  let inetK = 0;
  const lanMembers = new Map<string, number>();
  const children: { name: string; parent: string; impairment?: LinkImpairment; ifName: string }[] = [
    ...spec.routers.map((r) => ({ name: r.name, parent: r.upstream ?? INTERNET, impairment: r.wan, ifName: 'wan' })),
    ...spec.hosts.map((h) => ({ name: h.name, parent: h.attach, impairment: h.link, ifName: 'eth0' })),
  ];
  for (const c of children) {
    const id = links.length + 1;
    let parentIf: string; let childAddr: string; let parentAddr: string;
    if (c.parent === INTERNET) {
      inetK++;
      parentIf = `n${inetK}`;
      parentAddr = `198.18.${inetK}.1`;
      childAddr = `198.18.${inetK}.2`;
    } else {
      const m = lanMembers.get(c.parent) ?? 0;
      lanMembers.set(c.parent, m + 1);
      parentIf = `p${m}`;
      parentAddr = `${lanBase.get(c.parent)!}.1`;
      childAddr = `${lanBase.get(c.parent)!}.${10 + m}`;
    }
    const childNs = nodes.get(c.name)!.ns;
    const parentNs = nodes.get(c.parent)!.ns;
    nodes.get(c.name)!.address = childAddr;
    const imp = c.impairment;
    const delayed = imp !== undefined && ((imp.delayMs ?? 0) > 0 || (imp.jitterMs ?? 0) > 0);
    const link: PlannedLink = { id, child: c.name, parent: c.parent, childNs, parentNs, childIf: c.ifName, parentIf, childAddr, parentAddr, prefixLen: 24, impairment: imp };
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
    if (c.parent !== INTERNET) steps.push({ argv: ['ip', '-n', parentNs, 'link', 'set', 'dev', parentIf, 'master', 'lan'] });
    else steps.push({ argv: ['ip', '-n', parentNs, 'addr', 'add', `${parentAddr}/24`, 'dev', parentIf] });
    steps.push({ argv: ['ip', '-n', childNs, 'addr', 'add', `${childAddr}/24`, 'dev', c.ifName] });
    steps.push({ argv: ['ip', '-n', childNs, 'link', 'set', 'dev', c.ifName, 'up'] });
    steps.push({ argv: ['ip', '-n', parentNs, 'link', 'set', 'dev', parentIf, 'up'] });
    steps.push({ argv: ['ip', '-n', childNs, 'route', 'add', 'default', 'via', parentAddr] });
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

  for (const r of spec.routers) {
    steps.push({ argv: ['ip', 'netns', 'exec', nodes.get(r.name)!.ns, 'nft', '-f', '-'], stdin: natRuleset(r.nat) });
  }
  return { prefix, nodes, links, namespaces, steps, bridges };
}

/** The address the Internet sees for a node: its own if public, else its outermost NAT's. */
export function publicAddressOf(plan: Plan, spec: LabSpec, name: string): string {
  const host = spec.hosts.find((h) => h.name === name);
  let cur = host ? host.attach : name;
  if (host && cur === INTERNET) return plan.nodes.get(name)!.address!;
  for (;;) {
    const r = spec.routers.find((x) => x.name === cur);
    if (!r) throw new Error(`no node ${name}`);
    const up = r.upstream ?? INTERNET;
    if (up === INTERNET) return plan.nodes.get(r.name)!.address!;
    cur = up;
  }
}

/** The plan as a shell script (for docs and for debugging a failed run by hand). */
export function planToShell(plan: Plan): string {
  const q = (s: string): string => (/^[A-Za-z0-9_./:@%+=,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
  return plan.steps.map((s) => (s.stdin !== undefined ? `${s.argv.map(q).join(' ')} <<'EOF'\n${s.stdin}EOF` : s.argv.map(q).join(' '))).join('\n') + '\n';
}
