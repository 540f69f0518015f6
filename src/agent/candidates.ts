// Local candidate addresses and their preference. Preference decides which confirmed direct
// path wins: loopback (same host) > private LAN > public (incl. the STUN-reflexive address).
import { networkInterfaces } from 'node:os';
import { isIPv4 } from 'node:net';
import type { Candidate } from './inner.js';

export type CandidateClass = 'loopback' | 'lan' | 'public';

export function classify(address: string): CandidateClass {
  if (address.startsWith('127.') || address === '::1') return 'loopback';
  if (/^(10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|169\.254\.|100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\.)/.test(address)) return 'lan';
  if (/^f[cd]/i.test(address) || /^fe80/i.test(address)) return 'lan';
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

/**
 * IPv4 interface addresses with the agent's UDP port (the socket is IPv4, bound to all
 * interfaces unless configured otherwise). With a specific bind address only that one.
 */
export function gatherInterfaceCandidates(udpPort: number, bindHost: string): Candidate[] {
  if (bindHost !== '0.0.0.0' && bindHost !== '') return isIPv4(bindHost) ? [{ address: bindHost, port: udpPort }] : [];
  const out: Candidate[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const ni of list ?? []) {
      if (ni.family === 'IPv4') out.push({ address: ni.address, port: udpPort });
    }
  }
  return out.sort((a, b) => preference(b.address) - preference(a.address));
}

export function candidateKey(c: Candidate): string { return `${c.address}:${c.port}`; }
