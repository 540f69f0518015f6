// How this agent's NAT maps (RFC 4787 §4.1), learned by comparing the reflexive
// address:port that two STUN endpoints see for the same socket in the same round: the
// same everywhere is an endpoint-independent mapping ("easy": a peer can punch to the one
// address STUN reported); different ones are endpoint-dependent ("hard", symmetric: every
// destination gets its own port). One STUN endpoint cannot tell: `unknown`. The
// endpoints are the relays of the session (each answers STUN on its UDP port) and the
// second STUN endpoint a relay names in OTHER-ADDRESS (RFC 5780; `mpyc-relay serve
// --stun-alt-port`), asked in the same round, so one such relay is enough. Sans-I/O:
// RelaySet reports every answer with its round.
import type { Family } from './addresses.js';
import type { NatMapping } from './types.js';

export type MappingBehaviour = NatMapping['v4'];

/** One STUN answer: which endpoint answered (`addr:port` text) and what it saw (`addr:port` text). */
export interface StunObservation { server: string; reflexive: string }

/** Classifies the answers of one round for one socket. */
export function classifyMapping(obs: readonly StunObservation[]): MappingBehaviour {
  const servers = new Set(obs.map((o) => o.server));
  if (servers.size < 2) return 'unknown';
  const seen = new Set(obs.map((o) => o.reflexive));
  return seen.size === 1 ? 'independent' : 'dependent';
}

/** STUN servers answering in one round are bounded by the relays of a session (≤ 32). */
const MAX_OBSERVATIONS_PER_ROUND = 64;

interface FamilyState { round: number; obs: StunObservation[]; value: MappingBehaviour }

/**
 * The current mapping behaviour per family. A round with fewer than two answering
 * endpoints (one relay down) keeps the previous verdict: a NAT does not change its kind.
 */
export class NatTypeTracker {
  private readonly fam: Record<Family, FamilyState> = {
    4: { round: -1, obs: [], value: 'unknown' },
    6: { round: -1, obs: [], value: 'unknown' },
  };

  get(family: Family): MappingBehaviour {
    return this.fam[family].value;
  }

  /** One STUN answer of `round` (rounds only grow); returns true when the verdict changed. */
  observe(family: Family, round: number, o: StunObservation): boolean {
    const f = this.fam[family];
    if (round < f.round) return false;
    if (round > f.round) { f.round = round; f.obs = []; }
    if (f.obs.length >= MAX_OBSERVATIONS_PER_ROUND || f.obs.some((x) => x.server === o.server)) return false;
    f.obs.push(o);
    const v = classifyMapping(f.obs);
    if (v === 'unknown' || v === f.value) return false;
    f.value = v;
    return true;
  }
}
