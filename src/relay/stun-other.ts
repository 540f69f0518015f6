// The relay's two STUN endpoints (RFC 5780): the UDP port and a second, STUN-only port on
// the same address. Each endpoint's Binding successes name the other in OTHER-ADDRESS, so a
// client asking both from one socket tells an endpoint-independent mapping (one reflexive
// address) from an endpoint-dependent one (two). OTHER-ADDRESS needs an address a client
// can send to: the relay's public addresses, or the address it is bound to unless that is
// a wildcard; a family with neither gets no OTHER-ADDRESS.
import { isIP } from 'node:net';
import type { StunAddress } from '../stun/codec.js';

export interface StunEndpoints {
  /** what the UDP port's answers name (the STUN-only port), per family */
  fromMain: Partial<Record<StunAddress['family'], StunAddress>>;
  /** what the STUN-only port's answers name (the UDP port), per family */
  fromAlt: Partial<Record<StunAddress['family'], StunAddress>>;
}

const WILDCARDS = new Set(['0.0.0.0', '::', '[::]']);

/** The addresses OTHER-ADDRESS may carry: `publicAddresses` (IP literals), else the bound host if it is one. */
export function advertisedAddresses(boundHost: string, publicAddresses: readonly string[] | undefined): string[] {
  const list = publicAddresses && publicAddresses.length > 0 ? [...publicAddresses] : WILDCARDS.has(boundHost) ? [] : [boundHost];
  return list.map((a) => a.replace(/^\[|\]$/g, '')).filter((a) => isIP(a) !== 0);
}

export function stunEndpoints(addresses: readonly string[], mainPort: number, altPort: number): StunEndpoints {
  const out: StunEndpoints = { fromMain: {}, fromAlt: {} };
  for (const address of addresses) {
    const family = isIP(address) === 6 ? 'IPv6' : 'IPv4';
    out.fromMain[family] ??= { family, address, port: altPort };
    out.fromAlt[family] ??= { family, address, port: mainPort };
  }
  return out;
}
