// nftables rule sets of the lab (pure text, unit-tested without root): the IPv4 NAT of
// each router kind, the IPv6 stateful firewall, miniupnpd's tables, link loss, and the
// "blackhole" fault. plan.ts decides where each one is loaded.
import type { NatKind } from './spec.js';

/** The IPv4 NAT kinds (everything but ipv6-firewall). */
export type Ipv4NatKind = Exclude<NatKind, 'ipv6-firewall'>;

export interface NatOptions {
  nat: Ipv4NatKind;
  /** the router's address on its WAN link (hairpinned packets are addressed to it) */
  wanAddress: string;
  hairpin?: boolean;
  udpIdleTimeoutSec?: number;
  /** miniupnpd runs here: its DNAT pinholes (table inet lab_upnp) must pass this filter */
  portMapping?: boolean;
}

/**
 * How long a remembered UDP mapping lives without a packet (s): the kernel's replied-UDP
 * conntrack timeout (120 s) unless the router sets a shorter idle timeout. Every outbound
 * packet refreshes it, as every packet refreshes the conntrack entry.
 */
const DEFAULT_MAPPING_MEMORY_SEC = 120;

/**
 * Table `ip lab_nat` of an IPv4 router.
 *
 * Mapping: `masquerade` of what the LAN sends out of `wan` (the router's own packets keep
 * their address and port), `fully-random` for symmetric.
 *
 * Filtering: the input/forward filters drop new unsolicited packets arriving on the WAN,
 * as home routers do; without them a peer's first punch packet creates a conntrack entry
 * on the router itself that can collide with the host's mapping (DESIGN.md §4).
 *
 * Linux conntrack only lets in packets of a flow it has seen, i.e. from the exact remote
 * address:port (port-restricted). Address-restricted filtering and hairpinning need the
 * NAT's mapping table, which netfilter does not expose: chain `record_mappings` (after
 * the masquerade decided the public port) writes every outbound UDP mapping into dynamic
 * nft maps — public port → LAN address . port (`mapped_udp`), remote address . public
 * port (`contacted`) — and the prerouting chain DNATs through them:
 * - address-restricted: a new inbound packet from a contacted address to a mapped port
 *   goes to the mapping's owner; its reply leaves with the mapping's public port.
 * - hairpin: a packet from the LAN to the router's public address and a mapped port goes
 *   to the owner, source-NATed to the public address. The sender's source then is its
 *   own mapping (RFC 4787 REQ-9): nf_nat gives a new flow from a source that already has
 *   a mapping that same mapping (it is how masquerade is endpoint-independent), else
 *   keeps the port. Hairpinned packets are not filtered.
 */
export function natRuleset(o: NatOptions): string {
  const masq = o.nat === 'symmetric' ? 'masquerade fully-random' : 'masquerade';
  const addressRestricted = o.nat === 'address-restricted';
  const remembers = addressRestricted || o.hairpin === true;
  const memory = o.udpIdleTimeoutSec ?? DEFAULT_MAPPING_MEMORY_SEC;
  const lines: string[] = ['table ip lab_nat {'];
  if (o.udpIdleTimeoutSec !== undefined) lines.push(...ctTimeoutObject('ip', o.udpIdleTimeoutSec));
  if (remembers) {
    lines.push(`  map mapped_udp { type inet_service : ipv4_addr . inet_service; flags dynamic, timeout; timeout ${memory}s; }`);
    if (addressRestricted) lines.push(`  set contacted { type ipv4_addr . inet_service; flags dynamic, timeout; timeout ${memory}s; }`);
    lines.push(
      '  chain nat_pre {',
      '    type nat hook prerouting priority dstnat; policy accept;',
      ...(addressRestricted ? ['    iifname "wan" ip saddr . udp dport @contacted dnat ip to udp dport map @mapped_udp'] : []),
      ...(o.hairpin ? [`    iifname "lan" ip daddr ${o.wanAddress} dnat ip to udp dport map @mapped_udp`] : []),
      '  }',
    );
  }
  lines.push(
    '  chain nat_post {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    `    iifname "lan" oifname "wan" ${masq}`,
    ...(o.hairpin ? [`    iifname "lan" oifname "lan" ct status dnat snat ip to ${o.wanAddress}`] : []),
    '  }',
  );
  if (remembers) {
    const out = '    iifname "lan" oifname "wan" meta l4proto udp';
    lines.push(
      '  chain record_mappings {',
      '    type filter hook postrouting priority srcnat + 10; policy accept;',
      `${out} update @mapped_udp { ct reply proto-dst : ct original ip saddr . ct original proto-src }`,
      ...(addressRestricted ? [`${out} update @contacted { ip daddr . ct reply proto-dst }`] : []),
      '  }',
    );
  }
  if (o.udpIdleTimeoutSec !== undefined) lines.push(...ctTimeoutChain());
  lines.push(
    '  chain filter_forward {',
    '    type filter hook forward priority filter; policy accept;',
    ...(o.nat === 'udp-blocked' ? ['    meta l4proto udp counter drop'] : []),
    '    iifname "wan" ct state established,related accept',
    // the DNAT of an address-restricted mapping, or a miniupnpd pinhole (whose own
    // filter chain in table inet lab_upnp has already said yes or no)
    ...(addressRestricted || o.portMapping ? ['    iifname "wan" ct status dnat accept'] : []),
    '    iifname "wan" counter drop',
    '  }',
    ...wanInputFilter([]),
    '}',
    '',
  );
  return lines.join('\n');
}

/** Table `ip6 lab_fw6`: no NAT; inbound on the WAN only for established or related flows
 * (RFC 6092's recommended stateful filter), and neighbour discovery to the router itself. */
export function firewall6Ruleset(o: { udpIdleTimeoutSec?: number } = {}): string {
  return [
    'table ip6 lab_fw6 {',
    ...(o.udpIdleTimeoutSec !== undefined ? [...ctTimeoutObject('ip6', o.udpIdleTimeoutSec), ...ctTimeoutChain()] : []),
    '  chain filter_forward {',
    '    type filter hook forward priority filter; policy accept;',
    '    iifname "wan" ct state established,related accept',
    '    iifname "wan" counter drop',
    '  }',
    ...wanInputFilter(['    iifname "wan" icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept']),
    '}',
    '',
  ].join('\n');
}

function wanInputFilter(extra: string[]): string[] {
  return [
    '  chain filter_input {',
    '    type filter hook input priority filter; policy accept;',
    '    iifname "wan" ct state established,related accept',
    ...extra,
    '    iifname "wan" counter drop',
    '  }',
  ];
}

function ctTimeoutObject(family: 'ip' | 'ip6', sec: number): string[] {
  // one idle time for both states: an entry that saw a reply lives no longer than one
  // that did not (the kernel's defaults are 30 s and 120 s)
  return [`  ct timeout udp_idle { protocol udp; l3proto ${family}; policy = { unreplied: ${sec}, replied: ${sec} }; }`];
}

function ctTimeoutChain(): string[] {
  // the policy is attached when the entry is created, i.e. on its first packet
  return [
    '  chain conntrack_timeouts {',
    '    type filter hook prerouting priority filter; policy accept;',
    '    meta l4proto udp ct state new ct timeout set "udp_idle"',
    '  }',
  ];
}

/** Names miniupnpd is configured with (miniupnpd.ts) for its nft backend. */
export const UPNP_TABLE = 'lab_upnp';

/**
 * Table `inet lab_upnp`, the chains miniupnpd 2.3 (nftables backend, family inet) adds
 * its rules to: a DNAT per mapping in `prerouting_miniupnpd`, an accept per mapping in
 * `miniupnpd` (forward), SNAT for PCP PEER in `postrouting_miniupnpd`. The forward hook
 * drops a new DNAT-ed packet from the WAN that miniupnpd's chain did not accept; the
 * nat hooks run just before the router's own (a PCP PEER SNAT must win over masquerade).
 */
export function upnpRuleset(): string {
  return [
    `table inet ${UPNP_TABLE} {`,
    '  chain forward {',
    '    type filter hook forward priority filter - 1; policy accept;',
    '    iifname "wan" ct state new ct status dnat jump miniupnpd',
    '    iifname "wan" ct state new ct status dnat counter drop',
    '  }',
    '  chain miniupnpd {',
    '  }',
    '  chain prerouting {',
    '    type nat hook prerouting priority dstnat - 1; policy accept;',
    '    jump prerouting_miniupnpd',
    '  }',
    '  chain prerouting_miniupnpd {',
    '  }',
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat - 1; policy accept;',
    '    jump postrouting_miniupnpd',
    '  }',
    '  chain postrouting_miniupnpd {',
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
