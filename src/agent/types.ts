// The contract between the agent's core (connectivity, sessions, streams) and its
// surface (session file, CLI, control socket, port-layout listeners). Both sides code
// against these types; change them only by agreement.
import type { Socket } from 'node:net';
import type { Logger } from 'pino';

/** An X25519 key pair, 32 bytes each (same shape as src/noise's KeyPair). */
export interface AgentKeyPair {
  publicKey: Uint8Array;
  privateKey: Uint8Array;
}

/** A relay as written in the session file: `KEY@host:udpPort/httpPort`. */
export interface RelayAddress {
  /** base64 X25519 public key of the relay (44 chars) */
  publicKey: string;
  host: string;
  udpPort: number;
  /** HTTP port carrying the WebSocket fallback; absent means no WebSocket fallback */
  httpPort?: number;
  /** that port speaks TLS (https, wss: `KEY@host:udpPort/https:httpPort`) */
  tls?: boolean;
}

/** One party of the computation, in MPyC index order. */
export interface PartyEntry {
  index: number;
  /** base64 X25519 public key (44 chars) */
  publicKey: string;
  name?: string;
}

/** Where a stream opened by a peer should be delivered on the receiving side. */
export type StreamTarget =
  /** MPyC mode: "party j's own listener", i.e. 127.0.0.1:localBase+j on party j's machine */
  | { kind: 'mpyc'; party: number }
  /** generic mode: a loopback port on the peer that the peer's agent allows */
  | { kind: 'port'; port: number };

/** Generic forward: a local loopback port carried to a port on one peer. */
export interface GenericForward {
  localPort: number;
  peerIndex: number;
  remotePort: number;
}

export type RelayTransportChoice = 'auto' | 'udp' | 'ws';

export interface AgentConfig {
  keyPair: AgentKeyPair;
  /** this party's index, found by its public key in the session file */
  ownIndex: number;
  /** every party including this one, ordered by index */
  parties: PartyEntry[];
  /** relays in preference order: the first is the home relay, the rest are failovers */
  relays: RelayAddress[];
  /** MPyC's base port from the session file (MPyC -B; default 11365) */
  basePort: number;
  /**
   * This agent's own base: its listeners use localBase+j and incoming MPyC streams are
   * delivered to 127.0.0.1:localBase+ownIndex. Equals basePort unless overridden so that
   * several parties can share one machine.
   */
  localBase: number;
  /** never reveal this host's addresses to peers; all traffic via the relay */
  relayOnly: boolean;
  /**
   * Ask the router for a UDP port mapping of the IPv4 socket (PCP, NAT-PMP, UPnP-IGD) and
   * offer it to peers as a candidate; deleted on stop (default true; `--no-portmap`: false).
   * Never with relayOnly.
   */
  portMapping?: boolean;
  relayTransport: RelayTransportChoice;
  /** IPv4 UDP socket bind address for relay, STUN and direct paths (default 0.0.0.0, port 0) */
  udpBind: { host: string; port: number };
  /**
   * Bind address of the IPv6 UDP socket (on the IPv4 socket's port when free). Default: `::`
   * when udpBind.host is 0.0.0.0 (dual stack), none when it is a specific address; null: no
   * IPv6 socket.
   */
  udpBind6?: string | null;
  /** loopback ports a peer may reach in generic mode (besides MPyC's own port) */
  allowedPorts: number[];
  /** generic mode: local loopback ports carried to a port on a peer */
  forwards?: GenericForward[];
  /** where the port-layout listeners bind (default 127.0.0.1 and ::1) */
  listenHosts?: string[];
  /** a peer's stream connection is declared dead after this long without any packet (default 1 h: parties may start far apart) */
  streamIdleTimeoutMs?: number;
  /** stop(): how long in-flight stream data may drain before every socket is closed (default 500 ms; stop() ends within this + ~1 s) */
  stopGraceMs?: number;
  /** a connected peer silent this long is shown `offline` (default 15 s) */
  peerOfflineMs?: number;
  /** local connections to a peer that stayed offline this long are closed (default 15 s) */
  offlineCloseMs?: number;
  logger: Logger;
}

/**
 * How a direct path's address was found: `interface` (the peer's own interface address:
 * LAN, or a public address on the host), `stun` (its reflexive address), `portmap` (a
 * router mapping), `observed` (peer-reflexive: where its authenticated packets came from),
 * `other` (a mechanism of a newer agent).
 */
export type PathSource = 'interface' | 'stun' | 'portmap' | 'observed' | 'other';

/**
 * Which mechanism found a direct path, for people (issue #14): `lan` (a private or
 * loopback address: same LAN or host), `ipv6` (a global IPv6 address, punched through
 * stateful firewalls), `port-mapping` (an address a router mapped for one side: UPnP-IGD,
 * NAT-PMP or PCP), `birthday` (bounded birthday probing between an endpoint-independent
 * and an endpoint-dependent NAT), `stun` (hole punching between public IPv4 addresses:
 * interface, STUN-reflexive or peer-reflexive). Both sides of a pair agree: a side whose
 * peer reports `port-mapping` or `birthday` names that (paths.md).
 */
export type PathMechanism = 'lan' | 'ipv6' | 'port-mapping' | 'birthday' | 'stun';

export type PathInfo =
  | { kind: 'relay'; relay: string; transport: 'udp' | 'ws' }
  // family and source: absent in the status of an older agent (the status crosses the control socket)
  | { kind: 'direct'; address: string; lan: boolean; family?: 4 | 6; source?: PathSource; mechanism?: PathMechanism };

export type PeerState = 'connecting' | 'relay' | 'direct' | 'down';

/**
 * How a NAT maps, per address family (RFC 4787): `independent` — one public address:port
 * for every destination (STUN's answer is what peers can punch to); `dependent` — a new
 * one per destination (symmetric); `unknown` — fewer than two STUN endpoints answered
 * (a session with one relay). Learned by comparing the relays' STUN answers.
 */
export interface NatMapping { v4: 'unknown' | 'independent' | 'dependent'; v6: 'unknown' | 'independent' | 'dependent' }

/** waiting: never heard; connected: heard recently; offline: was connected, silent past peerOfflineMs */
export type PeerLiveness = 'waiting' | 'connected' | 'offline';

export interface PeerStatus {
  index: number;
  name?: string;
  publicKey: string;
  state: PeerState;
  path: PathInfo | null;
  /** (absent from an older agent's status, as every field added after v0.1) */
  liveness?: PeerLiveness;
  /** ms since `liveness` last changed */
  livenessAgeMs?: number;
  /** ms since the last authenticated packet from the peer (undefined: never) */
  lastHeardMs?: number;
  /** smoothed RTT measured on the current path; undefined until there is a real sample */
  rttMs?: number;
  bytesSent: number;
  bytesReceived: number;
  /** time since the current Noise session's handshake completed */
  handshakeAgeMs?: number;
  lastError?: string;
  /** open streams (TCP connections) with this peer */
  streams: number;
  /** ms since this peer's path last changed */
  pathAgeMs?: number;
  /** the peer's NAT mapping behaviour as it reports it */
  mapping?: NatMapping;
  /** birthday probing towards this peer, once attempted: attempts, probes sent, paths found, one under way */
  birthday?: { attempts: number; probes: number; found: number; running: boolean };
}

export interface AgentStatus {
  ownIndex: number;
  publicKey: string;
  /** e.g. "python demo.py -M3 -I 1" (with -B when localBase ≠ 11365) */
  mpycCommand: string;
  /** the first relay we are registered with (else the first of the session), for one-line views */
  relay: RelayStatus;
  /** every relay of the session: the agent registers with all of them */
  relays?: RelayStatus[];
  /** our reflexive address as learned by STUN, if any (IPv4 if known, else IPv6) */
  reflexiveAddress?: string;
  /** one per family learned */
  reflexiveAddresses?: string[];
  /** our NAT's mapping behaviour per family */
  mapping?: NatMapping;
  /** the router's port mapping of our IPv4 socket, if one was granted */
  portMapping?: { protocol: 'pcp' | 'natpmp' | 'upnp'; external: string; lifetimeSec: number };
  localAddresses: string[];
  /** the IPv4 socket's port (0 when there is none) */
  udpPort: number;
  /** the IPv6 socket's port, if there is one */
  udpPort6?: number;
  peers: PeerStatus[];
  uptimeMs: number;
}

export interface RelayStatus {
  address: string;
  transport: 'udp' | 'ws' | null;
  registered: boolean;
  /** why not registered (e.g. no answer over UDP for 12 s) */
  reason?: string;
}

export interface PingOptions {
  /** samples (1..1000, default 4) */
  count?: number;
  /** between samples, ms (≥ 10, default 1000) */
  intervalMs?: number;
}

export interface PingResult {
  peerIndex: number;
  samples: {
    seq: number;
    /** undefined: no answer within 2 s */
    rttMs?: number;
    /** the path the ping took: `direct ADDRESS:PORT` or `relay KEY@HOST:PORT` (null: no path) */
    path: PathInfo | null;
  }[];
}

export interface AgentHandle {
  /** bind the UDP socket, register with the relay, begin connecting to every peer */
  start(): Promise<void>;
  /** close every stream and socket; resolves when all are closed */
  stop(): Promise<void>;
  status(): AgentStatus;
  /**
   * Carry an accepted local TCP connection to a peer as a new stream. The core owns the
   * socket from here: back-pressure, half-close and reset map to the stream.
   */
  attachLocalSocket(peerIndex: number, target: StreamTarget, socket: Socket): void;
  /** Prometheus text exposition of the agent's metrics */
  metrics(): Promise<string>;
  /** authenticated echo to a peer on its current path, like `tailscale ping` */
  ping(peerIndex: number, opts?: PingOptions): Promise<PingResult>;
}
