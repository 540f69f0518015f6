// Declarative description of a lab topology: an "Internet" router in the middle, NAT
// routers (home routers, carrier NATs) hanging off it or off each other, and hosts
// attached either to the Internet (public address) or to a router's LAN.
//
// Addresses come only from test ranges: 198.18.0.0/15 (RFC 2544 benchmarking) on the
// Internet side, 100.64.0.0/10 (RFC 6598 shared space) on carrier LANs, 10.0.0.0/8 on
// home LANs. See plan.ts for the exact layout.

/**
 * How a router treats traffic between its LAN and its WAN.
 * - eim: Linux `masquerade` — keeps the source port when it can, i.e. endpoint-independent
 *   mapping; new unsolicited inbound packets on the WAN are dropped (a home router's filter).
 * - symmetric: `masquerade fully-random` — every new flow gets a random port, so the
 *   mapping depends on the destination; same inbound filter.
 * - udp-blocked: eim, and every UDP packet forwarded in either direction is dropped
 *   (only TCP crosses: the agent must use the relay's WebSocket).
 */
export type NatKind = 'eim' | 'symmetric' | 'udp-blocked';

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
  /** the router this one sits behind (carrier NAT); default: attached to the Internet */
  upstream?: string;
  /** impairment of this router's WAN link */
  wan?: LinkImpairment;
}

export interface HostSpec {
  name: string;
  /** 'internet' for a host with a public address, else the name of a router */
  attach: string;
  link?: LinkImpairment;
}

export interface LabSpec {
  routers: RouterSpec[];
  hosts: HostSpec[];
}

export const INTERNET = 'internet';

const NAME_RE = /^[a-z][a-z0-9]{0,11}$/;

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
  }
  for (const h of spec.hosts) {
    if (h.attach !== INTERNET && !routers.has(h.attach)) problems.push(`host ${h.name}: unknown attachment ${h.attach}`);
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
