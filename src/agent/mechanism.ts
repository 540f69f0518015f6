// Which mechanism found a direct path (status, issue #14), from what one side knows — how
// the peer's address was found (its candidate source) and its class and family — and
// what the peer reports about its own side (inner PATH message): a path through one
// side's router mapping or one side's birthday sockets looks like plain hole punching to
// the other side, so the mechanisms only one side can see win on both.
import { classify } from './candidates.js';
import { familyOf } from './addresses.js';
import type { CandidateSource } from './inner.js';
import type { PathMechanism } from './types.js';

/** The mechanisms only one side of a pair can see; a peer's report of one of them wins. */
const ONE_SIDED: ReadonlySet<PathMechanism> = new Set(['port-mapping', 'birthday']);

/** This side's view of the direct path to `address`, found as `source`. */
export function localMechanism(address: string, source: CandidateSource): PathMechanism {
  if (source === 'birthday') return 'birthday';
  if (source === 'portmap') return 'port-mapping';
  if (classify(address) !== 'public') return 'lan';
  return familyOf(address) === 6 ? 'ipv6' : 'stun';
}

/** The pair's mechanism: ours, unless the peer reports one only its side can see. */
export function pathMechanism(local: PathMechanism, peerReport: PathMechanism | undefined): PathMechanism {
  if (ONE_SIDED.has(local) || peerReport === undefined || !ONE_SIDED.has(peerReport)) return local;
  return peerReport;
}
