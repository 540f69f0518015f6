// The relay's table of registered agents: by key, by UDP address and port, by WebSocket
// connection; "newest registration wins"; detection of one key registered from two places
// that keep evicting each other (docs/protocol/relay.md, "Same key in two places").
import type { PeerKey } from '../common/peer-key.js';
import type { ControlKeys } from './control-auth.js';
import type { Bucket, SourceState } from './limits.js';
import { KeyBytesIndex, UdpIndex } from './agent-index.js';

/** A key that changes source this many times within CONFLICT_WINDOW_MS is in conflict:
 *  NAT rebinding or a UDP -> WebSocket move changes it once, two agents sharing a key
 *  every time one of them re-registers (every few seconds). */
export const CONFLICT_FLIPS = 3;
export const CONFLICT_WINDOW_MS = 30_000;

export interface Agent {
  key: PeerKey;
  transport: 'udp' | 'ws';
  /** UDP: source address and port; WebSocket: the connection's remote address, port 0 */
  address: string;
  port: number;
  /** "u<address>|<port>" or "w<connection id>": what changes when another place registers */
  place: string;
  conn: WsConnRef | undefined;
  lastSeen: number;
  /** this agent's sending budget */
  send: Bucket;
  /** every sender's packets to this agent together */
  receive: Bucket;
  /** PEER_GONE notices to this agent */
  gone: Bucket;
  /** the budgets of the agent's source address (shared with its neighbours) */
  source: SourceState;
  /** the registration handshake's control keys; undefined for an agent registered at
   *  another worker of a cluster (cluster.ts), whose `owner` that worker is */
  ctl: ControlKeys | undefined;
  /** the registration token (wire.ts tokenWords): every SEND and PING of this registration
   *  carries it; replicated to every worker of a cluster, which all forward its SENDs */
  token: [number, number];
  owner: number | undefined;
  /** key ids this agent accepts forwarded packets from; undefined = everyone */
  accept: Set<string> | undefined;
  /** times (ms) at which this key's registration moved to another place, recent first out */
  moves: number[];
}

/** What the table needs from a WebSocket connection. */
export interface WsConnRef { agent: Agent | undefined; close(code: number, why: string): void }

export class AgentTable {
  readonly byKey = new Map<string, Agent>();
  /** the same agents by their key's bytes: the forwarding path's lookup (agent-index.ts) */
  private readonly byKeyBytes = new KeyBytesIndex<Agent>();
  /** UDP bindings by port, then address (agent-index.ts: no string hashed per packet) */
  private readonly byUdp = new UdpIndex<Agent>();
  udpCount = 0;
  wsCount = 0;

  /** `onRemoved` hears of every agent that leaves the table; `replaced`: by a newer registration of its key */
  constructor(private readonly onRemoved: (a: Agent, replaced: boolean) => void) {}

  get size(): number { return this.byKey.size; }

  udp(address: string, port: number): Agent | undefined {
    return this.byUdp.get(address, port);
  }

  /** The agent whose key is the 32 bytes at `at` of a frame (no string made). */
  keyAt(frame: Uint8Array, at: number): Agent | undefined {
    return this.byKeyBytes.get(frame, at);
  }

  /**
   * Install `agent`, evicting the key's older binding and whoever held the same place.
   * `onMoved` hears about an older binding from another place before it is removed (its
   * control keys still usable), with whether the key is now in conflict. Returns that too.
   */
  install(agent: Agent, now: number, onMoved?: (old: Agent, conflict: boolean) => void): boolean {
    const old = this.byKey.get(agent.key.id);
    let conflict = false;
    if (old) {
      agent.moves = old.place === agent.place ? old.moves : [...old.moves.filter((t) => now - t < CONFLICT_WINDOW_MS), now];
      conflict = agent.moves.length >= CONFLICT_FLIPS;
      if (old.place !== agent.place) onMoved?.(old, conflict);
      this.forget(old, old.conn !== undefined && old.conn !== agent.conn, true);
    }
    if (agent.transport === 'udp') {
      // an address holds one key: evict whoever was registered from it before
      const prev = this.udp(agent.address, agent.port);
      if (prev) this.remove(prev, false);
      this.byUdp.add(agent);
      this.udpCount++;
    } else {
      // a WebSocket agent of another cluster worker has no connection here
      const c = agent.conn;
      if (c?.agent && c.agent !== agent) this.remove(c.agent, false);
      if (c) c.agent = agent;
      this.wsCount++;
    }
    agent.source.agents++;
    this.byKey.set(agent.key.id, agent);
    this.byKeyBytes.add(agent);
    return conflict;
  }

  /** Forget `a` (if it is still installed); closeConn closes its WebSocket too. */
  remove(a: Agent, closeConn: boolean): void {
    this.forget(a, closeConn, false);
  }

  private forget(a: Agent, closeConn: boolean, replaced: boolean): void {
    let installed = false;
    if (this.byKey.get(a.key.id) === a) { this.byKey.delete(a.key.id); this.byKeyBytes.delete(a); installed = true; }
    if (a.transport === 'udp') {
      if (this.byUdp.delete(a)) installed = true;
    } else if (a.conn && a.conn.agent === a) {
      a.conn.agent = undefined;
      installed = true;
      if (closeConn) a.conn.close(4000, 'registered elsewhere');
    }
    if (installed) {
      if (a.transport === 'udp') this.udpCount--; else this.wsCount--;
      a.source.agents--;
      this.onRemoved(a, replaced);
    }
  }

  values(): Agent[] { return [...this.byKey.values()]; }
}
