// Assembles the status view (`mpyc-agent status`, the control socket) from the agent's
// parts. Reads only; every figure is one the parts measured (no RTT before a sample).
import type { SessionManager } from '../session/index.js';
import { PeerKey } from '../common/peer-key.js';
import { candidateKey, classify } from './candidates.js';
import { endpointText, familyOf } from './addresses.js';
import { localMechanism, pathMechanism } from './mechanism.js';
import { mpycCommand } from './session-file.js';
import type { Candidate, CandidateSource } from './inner.js';
import type { PortMapping } from './portmap/port-mapper.js';
import type { PeerLink, Route } from './peer-link.js';
import type { RelaySet } from './relay-set.js';
import type { UdpBind } from './udp-endpoint.js';
import type { AgentConfig, AgentStatus, NatMapping, PathInfo, PathMechanism, PathSource, PeerStatus, RelayStatus } from './types.js';

export interface StatusParts {
  cfg: AgentConfig;
  links: PeerLink[];
  sessions: SessionManager<Route>;
  relays: RelaySet | undefined;
  udp: { v4?: UdpBind; v6?: UdpBind };
  localCandidates: Candidate[];
  reflexive: Candidate[];
  mapping: NatMapping;
  portMapping: PortMapping | undefined;
  uptimeMs: number;
}

/** PathInfo of a route; `source` says how a direct address was found, `peerMechanism` what the peer reports of its side. */
export function routeInfo(r: Route, relays: RelaySet | undefined, source: CandidateSource = 'observed', peerMechanism?: PathMechanism): PathInfo {
  if (r.kind === 'direct') {
    // a birthday path's address is where the peer's acknowledgement came from: `observed` (its mechanism says birthday)
    const shown: PathSource = source === 'birthday' ? 'observed' : source;
    return { kind: 'direct', address: endpointText(r.address, r.port), lan: classify(r.address) !== 'public', family: familyOf(r.address), source: shown,
      mechanism: pathMechanism(localMechanism(r.address, source), peerMechanism) };
  }
  return { kind: 'relay', relay: relays?.addressText(r.relay) ?? `relay ${r.relay}`, transport: relays?.transportOf(r.relay) ?? 'udp' };
}

function peerStatus(l: PeerLink, p: StatusParts, now: number): PeerStatus {
  const info = p.sessions.info(l.key);
  const a = l.paths.active;
  const direct = l.paths.activeInfo();
  const st = l.streams.connection.stats();
  let path: PathInfo | null = null;
  if (info.established) {
    if (a.kind === 'direct') path = routeInfo(a, p.relays, direct?.source, l.peerMechanism);
    else if (l.relayInUse !== undefined) path = routeInfo({ kind: 'relay', relay: l.relayInUse }, p.relays);
  }
  return {
    index: l.index, name: l.name, publicKey: l.key.text,
    state: !info.established ? 'connecting' : a.kind === 'direct' ? 'direct' : 'relay',
    liveness: l.liveness,
    livenessAgeMs: now - l.livenessSince,
    lastHeardMs: l.lastHeardAgoMs,
    path,
    // the transport's estimate once it has a sample on this path, else the path's probe RTT
    rttMs: info.established ? l.streams.measuredRttMs() ?? direct?.rttMs : undefined,
    bytesSent: l.bytesSent, bytesReceived: l.bytesReceived,
    handshakeAgeMs: info.handshakeAgeMs,
    lastError: info.lastError ?? l.lastError,
    streams: st.openStreams,
    pathAgeMs: now - l.pathSince,
    mapping: { ...l.peerNat },
    ...(l.birthday.totals.attempts > 0 ? { birthday: { ...l.birthday.totals, running: l.birthday.running } } : {}),
  };
}

export function buildStatus(p: StatusParts): AgentStatus {
  const now = performance.now();
  const relays: RelayStatus[] = p.cfg.relays.map((_, i) => ({
    address: p.relays?.addressText(i) ?? '',
    transport: p.relays?.transportOf(i) ?? null,
    registered: p.relays?.isRegistered(i) ?? false,
    reason: p.relays?.problem(i, now),
  }));
  const reflexive = [...p.reflexive].sort((a, b) => familyOf(a.address) - familyOf(b.address)).map(candidateKey);
  return {
    ownIndex: p.cfg.ownIndex,
    publicKey: PeerKey.fromBytes(p.cfg.keyPair.publicKey).text,
    mpycCommand: mpycCommand(p.cfg.parties.length, p.cfg.ownIndex, p.cfg.localBase),
    relay: relays.find((r) => r.registered) ?? relays[0]!,
    relays,
    reflexiveAddress: reflexive[0],
    reflexiveAddresses: reflexive,
    mapping: p.mapping,
    ...(p.portMapping ? { portMapping: { protocol: p.portMapping.protocol, external: endpointText(p.portMapping.externalAddress, p.portMapping.externalPort), lifetimeSec: p.portMapping.lifetimeSec } } : {}),
    localAddresses: p.localCandidates.map(candidateKey),
    udpPort: p.udp.v4?.port ?? 0,
    udpPort6: p.udp.v6?.port,
    peers: [...p.links].sort((a, b) => a.index - b.index).map((l) => peerStatus(l, p, now)),
    uptimeMs: p.uptimeMs,
  };
}
