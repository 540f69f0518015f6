// netcheck's UDP half: STUN Binding requests from one socket per family to every STUN
// endpoint of the relays (and to a relay's second endpoint when its answer names one in
// RFC 5780 OTHER-ADDRESS), the reflexive address each saw, the round trip, and from those
// the NAT's mapping behaviour (RFC 4787): the same reflexive address towards every
// destination is endpoint-independent (hole punching works), a different one per
// destination is endpoint-dependent (a symmetric NAT: expect the relay).
import { createSocket, type Socket } from 'node:dgram';
import { networkInterfaces } from 'node:os';
import { StunClient } from '../stun/index.js';
import { canonicalIp, endpointText, familyOf, type Family } from './addresses.js';

/** first sample: the STUN client's retransmissions (300 ms doubling, 4 sends, ≈ 4.5 s) */
const FIRST_RTO_MS = 300;
const FIRST_TRANSMISSIONS = 4;
/** the RTT samples after the first answer: one send each, lost after this long */
const SAMPLE_TIMEOUT_MS = 1000;
export const DEFAULT_STUN_SAMPLES = 3;

export interface StunTarget {
  /** index of the relay in the list checked */
  relay: number;
  address: string;
  port: number;
  /** found in a relay's OTHER-ADDRESS, not in the relay address */
  other?: boolean;
}

export interface StunProbe extends StunTarget {
  family: Family;
  /** requests sent (the first one's retransmissions not counted) */
  sent: number;
  answered: number;
  /** the smallest round trip of the answered requests */
  rttMs?: number;
  /** `ADDRESS:PORT` as the endpoint saw us */
  reflexive?: string;
  /** the endpoint's OTHER-ADDRESS, if its answer carried one */
  otherAddress?: string;
  error?: string;
}

export type MappingKind = 'endpoint-independent' | 'endpoint-dependent' | 'unknown';

export interface FamilyReport {
  family: Family;
  /** false: no socket of this family on this host (the reason in `error`) */
  socket: boolean;
  localPort?: number;
  /** distinct reflexive addresses seen, in the order first seen */
  reflexive: string[];
  mapping: MappingKind;
  /** why, for people: "the same reflexive address from 2 STUN endpoints" */
  mappingReason: string;
  /** false: the reflexive address is this host's own (no NAT); undefined: no answer */
  nat?: boolean;
  error?: string;
}

interface Endpoint { client: StunClient; probe: StunProbe }

/** `1.2.3.4:5` or `[::1]:5` back into its parts (canonical address), or null. */
export function parseEndpoint(text: string): { address: string; port: number } | null {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(text) ?? /^([^:[\]]+):(\d{1,5})$/.exec(text);
  const address = m ? canonicalIp(m[1]!) : null;
  return address && Number(m![2]) <= 65535 ? { address, port: Number(m![2]) } : null;
}

/** One wildcard UDP socket of a family, or why there is none. */
function openSocket(family: Family): Promise<Socket | string> {
  return new Promise((resolve) => {
    const s = createSocket(family === 4 ? { type: 'udp4' } : { type: 'udp6', ipv6Only: true });
    s.once('error', (e: NodeJS.ErrnoException) => { s.close(); resolve(e.code ?? e.message); });
    s.bind({ address: family === 4 ? '0.0.0.0' : '::', port: 0 }, () => { s.removeAllListeners('error'); s.on('error', () => undefined); resolve(s); });
  });
}

function localAddresses(): Set<string> {
  const out = new Set<string>();
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) { const c = canonicalIp(a.address); if (c) out.add(c); }
  return out;
}

/** Same-family reflexive addresses from distinct endpoints → the mapping behaviour. */
export function classifyMapping(probes: readonly StunProbe[]): { mapping: MappingKind; reason: string; reflexive: string[] } {
  const answered = probes.filter((p) => p.reflexive !== undefined);
  const endpoints = new Set(answered.map((p) => endpointText(p.address, p.port)));
  const reflexive = [...new Set(answered.map((p) => p.reflexive!))];
  if (answered.length === 0) return { mapping: 'unknown', reason: 'no STUN answer', reflexive };
  if (endpoints.size < 2) return { mapping: 'unknown', reason: 'one STUN endpoint', reflexive };
  if (reflexive.length === 1) return { mapping: 'endpoint-independent', reason: `the same reflexive address from ${endpoints.size} STUN endpoints`, reflexive };
  return { mapping: 'endpoint-dependent', reason: `${reflexive.length} different reflexive addresses from ${endpoints.size} STUN endpoints`, reflexive };
}

/**
 * Asks every target `samples` times (the first with retransmissions), then every
 * OTHER-ADDRESS the answers named, and reports per family. Sockets are closed before it
 * resolves.
 */
export async function probeStun(targets: readonly StunTarget[], samples = DEFAULT_STUN_SAMPLES): Promise<{ probes: StunProbe[]; families: FamilyReport[] }> {
  const sockets = new Map<Family, Socket | string>();
  for (const f of [4, 6] as const) if (targets.some((t) => familyOf(t.address) === f)) sockets.set(f, await openSocket(f));
  const localPorts = new Map<Family, number>();
  for (const [f, s] of sockets) if (typeof s !== 'string') localPorts.set(f, s.address().port);
  const endpoints = new Map<string, Endpoint>();
  const probes: StunProbe[] = [];
  const onMessage = (msg: Buffer, from: { address: string; port: number }): void => {
    const own = endpoints.get(endpointText(canonicalIp(from.address) ?? from.address, from.port));
    // a server may answer from another address of its host: the transaction id decides
    for (const e of [...(own ? [own] : []), ...endpoints.values()]) {
      if (e.client.handleDatagram(msg)) return;
    }
  };
  for (const s of sockets.values()) if (typeof s !== 'string') s.on('message', onMessage);

  const ask = async (target: StunTarget): Promise<void> => {
    const family = familyOf(target.address);
    const probe: StunProbe = { ...target, family, sent: 0, answered: 0 };
    probes.push(probe);
    const socket = sockets.get(family);
    if (socket === undefined || typeof socket === 'string') { probe.error = `no IPv${family} socket on this host${socket ? ` (${socket})` : ''}`; return; }
    const send = (d: Uint8Array): void => { socket.send(d, target.port, target.address, () => undefined); };
    const first = new StunClient({ send, autoTimers: true, rtoMs: FIRST_RTO_MS, maxTransmissions: FIRST_TRANSMISSIONS });
    const later = new StunClient({ send, autoTimers: true, rtoMs: SAMPLE_TIMEOUT_MS, maxTransmissions: 1 });
    const key = endpointText(target.address, target.port);
    try {
      for (let i = 0; i < samples; i++) {
        const client = i === 0 ? first : later;
        endpoints.set(key, { client, probe });
        probe.sent++;
        const t0 = performance.now();
        try {
          const { mapped, other } = await client.binding();
          probe.rttMs = Math.min(probe.rttMs ?? Infinity, performance.now() - t0);
          probe.answered++;
          probe.reflexive = endpointText(canonicalIp(mapped.address) ?? mapped.address, mapped.port);
          if (other) probe.otherAddress = endpointText(other.address, other.port);
        } catch (e) {
          if (i === 0) { probe.error = `no answer (${(e as Error).message})`; break; }
        }
      }
    } finally {
      first.close();
      later.close();
    }
  };
  try {
    const unique = targets.filter((t, i) => targets.findIndex((u) => endpointText(u.address, u.port) === endpointText(t.address, t.port)) === i);
    await Promise.all(unique.map(ask));
    // a second endpoint of a relay (RFC 5780): with it one relay tells EIM from symmetric
    const others = new Map<string, StunTarget>();
    for (const p of probes) {
      const o = p.otherAddress === undefined ? null : parseEndpoint(p.otherAddress);
      if (!o || familyOf(o.address) !== p.family) continue;
      const key = endpointText(o.address, o.port);
      if (!endpoints.has(key) && !others.has(key)) others.set(key, { relay: p.relay, ...o, other: true });
    }
    await Promise.all([...others.values()].map(ask));
  } finally {
    for (const s of sockets.values()) if (typeof s !== 'string') s.close();
  }
  const own = localAddresses();
  const families = [...sockets].map(([family, socket]): FamilyReport => {
    const { mapping, reason, reflexive } = classifyMapping(probes.filter((p) => p.family === family));
    if (typeof socket === 'string') return { family, socket: false, reflexive, mapping, mappingReason: reason, error: socket };
    const localPort = localPorts.get(family)!;
    const first = reflexive[0] === undefined ? null : parseEndpoint(reflexive[0]);
    return { family, socket: true, localPort, reflexive, mapping, mappingReason: reason, ...(first ? { nat: !(own.has(first.address) && first.port === localPort) } : {}) };
  });
  return { probes, families };
}
