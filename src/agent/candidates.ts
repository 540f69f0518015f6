// Local candidate addresses and their preference. Preference decides which confirmed direct
// path wins first: loopback (same host) > private LAN > public (incl. the STUN-reflexive
// address); among confirmed paths of one class the lower RTT wins (path.ts).
import { networkInterfaces } from 'node:os';
import { canonicalIp, endpointText, isLinkLocal6 } from './addresses.js';
import type { Candidate } from './inner.js';

export type CandidateClass = 'loopback' | 'lan' | 'public';

export function classify(address: string): CandidateClass {
  if (address.startsWith('127.') || address === '::1') return 'loopback';
  if (/^(10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|169\.254\.|100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\.)/.test(address)) return 'lan';
  // IPv6 unique-local fc00::/7 and link-local fe80::/10
  if (/^f[cd][0-9a-f]{0,2}:/i.test(address) || isLinkLocal6(address)) return 'lan';
  return 'public';
}

/** Higher is better. */
export function preference(address: string): number {
  switch (classify(address)) {
    case 'loopback': return 3;
    case 'lan': return 2;
    case 'public': return 1;
  }
}

export interface LocalSockets {
  /** port of the IPv4 socket and its bind address, if there is one */
  v4?: { host: string; port: number };
  /** port of the IPv6 socket and its bind address, if there is one */
  v6?: { host: string; port: number };
}

/**
 * Interface addresses with the agent's UDP port of their family: IPv4 ones, and IPv6 global,
 * unique-local and link-local ones (with their zone). A socket bound to one address
 * contributes only that address.
 */
export function gatherInterfaceCandidates(sockets: LocalSockets): Candidate[] {
  const out: Candidate[] = [];
  for (const [fam, s] of [[4, sockets.v4], [6, sockets.v6]] as const) {
    if (!s) continue;
    const wildcard = s.host === '0.0.0.0' || s.host === '::' || s.host === '';
    if (!wildcard) {
      const a = canonicalIp(s.host);
      if (a) out.push({ address: a, port: s.port, source: 'interface' });
      continue;
    }
    for (const [name, list] of Object.entries(networkInterfaces())) {
      for (const ni of list ?? []) {
        if ((ni.family === 'IPv4' ? 4 : 6) !== fam) continue;
        const a = canonicalIp(fam === 6 && isLinkLocal6(ni.address) ? `${ni.address}%${name}` : ni.address);
        if (a) out.push({ address: a, port: s.port, source: 'interface' });
      }
    }
  }
  return out.sort((a, b) => preference(b.address) - preference(a.address));
}

/** Zones (interface names) that have an IPv6 link-local address: where a peer's link-local candidate may be. */
export function linkLocalZones(): string[] {
  return Object.entries(networkInterfaces())
    .filter(([, list]) => (list ?? []).some((ni) => ni.family === 'IPv6' && isLinkLocal6(ni.address)))
    .map(([name]) => name);
}

/** A candidate's identity: its address and port, and the local socket it is reached from when that is not the main one. */
export function candidateKey(c: { address: string; port: number; via?: number }): string {
  return c.via === undefined ? endpointText(c.address, c.port) : `${endpointText(c.address, c.port)} via ${c.via}`;
}
