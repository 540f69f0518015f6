// Declarative description of a lab topology: an "Internet" router in the middle, NAT
// routers (home routers, carrier NATs) hanging off it or off each other, and hosts
// attached either to the Internet (public address) or to a router's LAN.
//
// Addresses come only from test ranges: 198.18.0.0/15 (RFC 2544 benchmarking) on the
// Internet side, 100.64.0.0/10 (RFC 6598 shared space) on carrier LANs, 10.0.0.0/8 on
// home LANs; IPv6 (only where a node asks for it) from 2001:db8::/32 (RFC 3849
// documentation) as the "global" space and fd00::/8 (RFC 4193 ULA) on LANs. See plan.ts
// for the exact layout.

/**
 * How a router treats traffic between its LAN and its WAN (RFC 4787 terms).
 * - port-restricted: Linux `masquerade` — keeps the source port when it can, i.e.
 *   endpoint-independent mapping (EIM); inbound on the WAN only from the exact
 *   address:port the mapping was opened to (address-and-port-dependent filtering).
 *   What a typical home router does; the matrix rows call it "EIM NAT".
 * - address-restricted: the same EIM mapping, but inbound is let in from any port of a
 *   remote address the mapping has sent to (address-dependent filtering; UDP only).
 * - symmetric: `masquerade fully-random` — every new flow gets a random port, so the
 *   mapping depends on the destination (endpoint-dependent); filtering as port-restricted.
 * - udp-blocked: port-restricted, and every UDP packet forwarded in either direction is
 *   dropped (only TCP crosses: the agent must use the relay's WebSocket).
 * - ipv6-firewall: an IPv6-only router with no NAT at all (LAN hosts have global
 *   addresses) and a stateful firewall: inbound on the WAN only for established or
 *   related flows, so a peer must still punch (RFC 6092).
 */
export type NatKind = 'port-restricted' | 'address-restricted' | 'symmetric' | 'udp-blocked' | 'ipv6-firewall';

/** Which address families a node has on its links. */
export type Family = 'ipv4' | 'dual' | 'ipv6';

/** Impairment of one link, applied in both directions. */
export interface LinkImpairment {
  /** one-way delay added by the userspace bridge (ms) */
  delayMs?: number;
  /** uniform extra delay in [0, jitterMs] per frame; frames are never reordered */
  jitterMs?: number;
  /** random loss per direction, percent (integer 0..100), by nft numgen */
  lossPct?: number;
  /** rate limit per direction (Mbit/s), by tc tbf */
  rateMbit?: number;
}

export interface RouterSpec {
  name: string;
  nat: NatKind;
  /**
   * Dual stack: besides its IPv4 NAT the router routes IPv6 for its LAN (a global /64,
   * no NAT) through the same stateful firewall as `ipv6-firewall`. Implied by
   * `ipv6-firewall`. Only for routers attached to the Internet.
   */
  ipv6?: boolean;
  /** UDP mappings (conntrack entries) expire after this many seconds without a packet in
   * either direction (nft `ct timeout` policy); default: the kernel's 30 s unreplied /
   * 120 s replied */
  udpIdleTimeoutSec?: number;
  /**
   * Hairpinning (RFC 4787 REQ-9): UDP from the LAN to the router's own public address and
   * a mapped port is sent back into the LAN to the host that owns the mapping, with the
   * sender's own mapping as its source. IPv4 NAT kinds only.
   */
  hairpin?: boolean;
  /** LAN ports isolated from each other (Wi-Fi client isolation): members reach the
   * router but not each other, so no LAN path exists between them */
  isolateLan?: boolean;
  /**
   * A port-mapping router: runs Debian's miniupnpd (UPnP-IGD, NAT-PMP, PCP) whose mappings
   * are DNAT rules in front of this router's NAT. symmetric or port-restricted only.
   */
  portMapping?: boolean;
  /** the router this one sits behind (carrier NAT); default: attached to the Internet */
  upstream?: string;
  /** impairment of this router's WAN link */
  wan?: LinkImpairment;
}

export interface HostSpec {
  name: string;
  /** 'internet' for a host with a public address, else the name of a router */
  attach: string;
  /** families of a host on the Internet (default ipv4); a host behind a router has its
   * router's (dual if the router is dual stack, ipv6 behind an ipv6-firewall) */
  family?: Family;
  link?: LinkImpairment;
}

export interface LabSpec {
  routers: RouterSpec[];
  hosts: HostSpec[];
}

export const INTERNET = 'internet';

const NAME_RE = /^[a-z][a-z0-9]{0,11}$/;
/** a bound on the idle timeout: a lab run never waits longer than an hour */
const MAX_UDP_IDLE_TIMEOUT_SEC = 3600;

export function routerFamily(r: RouterSpec): Family {
  if (r.nat === 'ipv6-firewall') return 'ipv6';
  return r.ipv6 ? 'dual' : 'ipv4';
}

/** The families of any node of the spec (the Internet carries both). */
export function familyOf(spec: LabSpec, name: string): Family {
  if (name === INTERNET) return 'dual';
  const r = spec.routers.find((x) => x.name === name);
  if (r) return routerFamily(r);
  const h = spec.hosts.find((x) => x.name === name);
  if (!h) throw new Error(`no node ${name}`);
  if (h.attach === INTERNET) return h.family ?? 'ipv4';
  const up = spec.routers.find((x) => x.name === h.attach);
  return up ? routerFamily(up) : 'ipv4';
}

export const hasV4 = (f: Family): boolean => f !== 'ipv6';
export const hasV6 = (f: Family): boolean => f !== 'ipv4';

/** Reject descriptions the planner cannot build; returns a list of problems (empty = ok). */
export function validateSpec(spec: LabSpec): string[] {
  const problems: string[] = [];
  const names = new Set<string>();
  const routers = new Map(spec.routers.map((r) => [r.name, r]));
  for (const n of [...spec.routers.map((r) => r.name), ...spec.hosts.map((h) => h.name)]) {
    if (!NAME_RE.test(n)) problems.push(`name ${JSON.stringify(n)}: must match ${NAME_RE}`);
    if (n === INTERNET) problems.push(`name ${JSON.stringify(n)} is reserved`);
    if (names.has(n)) problems.push(`name ${JSON.stringify(n)} used twice`);
    names.add(n);
  }
  for (const r of spec.routers) {
    if (r.upstream !== undefined && r.upstream !== INTERNET && !routers.has(r.upstream)) problems.push(`router ${r.name}: unknown upstream ${r.upstream}`);
    // a cycle would leave routers with no way to the Internet
    const seen = new Set<string>();
    let cur: RouterSpec | undefined = r;
    while (cur && cur.upstream !== undefined && cur.upstream !== INTERNET) {
      if (seen.has(cur.name)) { problems.push(`router ${r.name}: upstream cycle`); break; }
      seen.add(cur.name);
      cur = routers.get(cur.upstream);
    }
    if (r.wan) problems.push(...validateImpairment(r.wan, `router ${r.name} wan`));
    problems.push(...validateRouterOptions(r, spec));
  }
  for (const h of spec.hosts) {
    if (h.attach !== INTERNET && !routers.has(h.attach)) problems.push(`host ${h.name}: unknown attachment ${h.attach}`);
    if (h.family !== undefined && h.attach !== INTERNET) problems.push(`host ${h.name}: family is set by its router ${h.attach}, not on the host`);
    if (h.link) problems.push(...validateImpairment(h.link, `host ${h.name} link`));
  }
  const internetLinks = spec.routers.filter((r) => (r.upstream ?? INTERNET) === INTERNET).length + spec.hosts.filter((h) => h.attach === INTERNET).length;
  if (internetLinks > 250) problems.push('more than 250 links on the Internet');
  if (spec.routers.length > 250) problems.push('more than 250 routers');
  for (const r of spec.routers) {
    const lanSize = spec.routers.filter((x) => x.upstream === r.name).length + spec.hosts.filter((h) => h.attach === r.name).length;
    if (lanSize > 200) problems.push(`router ${r.name}: more than 200 LAN members`);
  }
  return problems;
}

function validateRouterOptions(r: RouterSpec, spec: LabSpec): string[] {
  const p: string[] = [];
  const what = `router ${r.name}`;
  const family = routerFamily(r);
  // IPv6 prefixes are routed from the Internet router straight to the router's WAN; a
  // chain of IPv6 routers (prefix delegation) is more than the rows need
  if (hasV6(family) && (r.upstream ?? INTERNET) !== INTERNET) p.push(`${what}: IPv6 only on routers attached to the Internet`);
  for (const child of spec.routers.filter((x) => x.upstream === r.name)) {
    if (!hasV4(family)) p.push(`${what}: an ipv6-firewall router cannot carry the IPv4 router ${child.name}`);
  }
  if (r.udpIdleTimeoutSec !== undefined && !(Number.isInteger(r.udpIdleTimeoutSec) && r.udpIdleTimeoutSec >= 1 && r.udpIdleTimeoutSec <= MAX_UDP_IDLE_TIMEOUT_SEC)) {
    p.push(`${what}: udpIdleTimeoutSec must be an integer in [1, ${MAX_UDP_IDLE_TIMEOUT_SEC}]`);
  }
  if (r.hairpin && !hasV4(family)) p.push(`${what}: hairpin needs an IPv4 NAT`);
  if (r.hairpin && r.nat === 'udp-blocked') p.push(`${what}: hairpin is UDP only and a udp-blocked router drops UDP`);
  // miniupnpd's pinholes are the only DNAT rules on such a router (see plan.ts): the
  // kinds that add their own (address-restricted, hairpin) are left out
  if (r.portMapping && r.nat !== 'symmetric' && r.nat !== 'port-restricted') p.push(`${what}: portMapping needs nat symmetric or port-restricted`);
  if (r.portMapping && r.hairpin) p.push(`${what}: portMapping and hairpin together are not supported`);
  if (r.portMapping && (r.upstream ?? INTERNET) !== INTERNET) p.push(`${what}: a port-mapping router must be attached to the Internet (its mappings are public)`);
  return p;
}

function validateImpairment(l: LinkImpairment, what: string): string[] {
  const p: string[] = [];
  const nonneg = (v: number | undefined, n: string, max: number): void => {
    if (v !== undefined && !(Number.isFinite(v) && v >= 0 && v <= max)) p.push(`${what}: ${n} must be in [0, ${max}]`);
  };
  nonneg(l.delayMs, 'delayMs', 10_000);
  nonneg(l.jitterMs, 'jitterMs', 10_000);
  nonneg(l.rateMbit, 'rateMbit', 100_000);
  if (l.lossPct !== undefined && !(Number.isInteger(l.lossPct) && l.lossPct >= 0 && l.lossPct <= 100)) p.push(`${what}: lossPct must be an integer in [0, 100]`);
  if (l.rateMbit === 0) p.push(`${what}: rateMbit must be > 0`);
  return p;
}
