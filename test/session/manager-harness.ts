// Two (or more) SessionManagers on a hand-driven network with a fake monotonic clock: every
// transmitted datagram waits in `wire` until the test delivers, drops, duplicates or
// reorders it. Endpoints (the managers' opaque `E`) are strings here.
import { generateKeyPair, type KeyPair } from '../../src/noise/index.js';
import { SessionManager, type SessionEvent } from '../../src/session/index.js';
import { PeerKey } from '../../src/common/peer-key.js';

export interface InFlight {
  from: string;
  to: string;
  packet: Uint8Array;
  /** the endpoint the sender's manager named (null: the caller's choice) */
  endpoint: string | null;
  /** the endpoint the receiver's manager is told the datagram came from */
  via: string;
}

/** the endpoint a receiver sees when `name` sends by its default path */
export const pathOf = (name: string): string => `path-of-${name}`;

export class Clock {
  now = 1_000;
  wall = Date.UTC(2026, 10, 23);
  advance(ms: number): void { this.now += ms; this.wall += ms; }
}

export interface Node {
  name: string;
  key: KeyPair;
  m: SessionManager<string>;
  delivered: { from: string; data: Uint8Array; via: string }[];
  events: SessionEvent[];
}

export class Net {
  readonly clock = new Clock();
  readonly wire: InFlight[] = [];
  readonly nodes = new Map<string, Node>();
  private readonly byKey = new Map<string, string>();
  /** nodes whose transmit finds no route (as an agent before its first relay registration): it returns false */
  readonly unrouted = new Set<string>();

  constructor(names: string[], keys?: KeyPair[]) {
    const kps = keys ?? names.map(() => generateKeyPair());
    names.forEach((n, i) => this.byKey.set(PeerKey.fromBytes(kps[i]!.publicKey).id, n));
    names.forEach((name, i) => {
      const key = kps[i]!;
      const node: Node = { name, key, delivered: [], events: [], m: undefined as unknown as SessionManager<string> };
      node.m = new SessionManager<string>({
        staticKey: key,
        peers: kps.filter((_, j) => j !== i).map((k) => PeerKey.fromBytes(k.publicKey)),
        clock: () => this.clock.now,
        wallClock: () => this.clock.wall,
        transmit: (peer, packet, endpoint) => {
          if (this.unrouted.has(name)) return false; // nothing left: no route yet
          this.wire.push({ from: name, to: this.byKey.get(peer.id)!, packet: new Uint8Array(packet), endpoint, via: pathOf(name) });
          return true;
        },
        deliver: (peer, data, via) => node.delivered.push({ from: this.byKey.get(peer.id)!, data: new Uint8Array(data), via }),
        onEvent: (e) => node.events.push(e),
      });
      this.nodes.set(name, node);
    });
  }

  node(name: string): Node { return this.nodes.get(name)!; }
  pub(name: string): PeerKey { return PeerKey.fromBytes(this.node(name).key.publicKey); }

  /** Sends data from a to b through the manager (to the endpoint `to` if given). */
  send(a: string, b: string, data: Uint8Array, to?: string): boolean { return this.node(a).m.send(this.pub(b), data, to); }

  /** Delivers in-flight datagrams (FIFO) until the wire is empty or `max` were delivered. */
  flush(max = 10_000): number {
    let n = 0;
    while (this.wire.length > 0 && n < max) {
      const f = this.wire.shift()!;
      this.node(f.to).m.receive(f.packet, f.via);
      n++;
    }
    return n;
  }

  /** Advances time in steps, running every manager's timers, and flushes after each step. */
  run(ms: number, step = 100): void {
    for (let t = 0; t < ms; t += step) {
      this.clock.advance(step);
      for (const n of this.nodes.values()) n.m.tick(this.clock.now);
      this.flush();
    }
  }
}

export function bytes(...xs: number[]): Uint8Array { return new Uint8Array(xs); }
export function text(s: string): Uint8Array { return new TextEncoder().encode(s); }
export function str(b: Uint8Array): string { return new TextDecoder().decode(b); }
