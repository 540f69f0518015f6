// Two (or more) SessionManagers on a hand-driven network with a fake monotonic clock: every
// transmitted datagram waits in `wire` until the test delivers, drops, duplicates or
// reorders it.
import { generateKeyPair, type KeyPair } from '../../src/noise/index.js';
import { SessionManager, type SessionEvent } from '../../src/session/index.js';
import { encodeKey } from '../../src/common/base64.js';

export interface InFlight { from: string; to: string; packet: Uint8Array }

export class Clock {
  now = 1_000;
  wall = Date.UTC(2026, 10, 23);
  advance(ms: number): void { this.now += ms; this.wall += ms; }
}

export interface Node {
  name: string;
  key: KeyPair;
  m: SessionManager;
  delivered: { from: string; data: Uint8Array }[];
  events: SessionEvent[];
}

export class Net {
  readonly clock = new Clock();
  readonly wire: InFlight[] = [];
  readonly nodes = new Map<string, Node>();
  private readonly byKey = new Map<string, string>();

  constructor(names: string[], keys?: KeyPair[]) {
    const kps = keys ?? names.map(() => generateKeyPair());
    names.forEach((n, i) => this.byKey.set(encodeKey(kps[i]!.publicKey), n));
    names.forEach((name, i) => {
      const key = kps[i]!;
      const node: Node = { name, key, delivered: [], events: [], m: undefined as unknown as SessionManager };
      node.m = new SessionManager({
        staticKey: key,
        peers: kps.filter((_, j) => j !== i).map((k) => k.publicKey),
        clock: () => this.clock.now,
        wallClock: () => this.clock.wall,
        transmit: (peer, packet) => this.wire.push({ from: name, to: this.byKey.get(encodeKey(peer))!, packet: new Uint8Array(packet) }),
        deliver: (peer, data) => node.delivered.push({ from: this.byKey.get(encodeKey(peer))!, data: new Uint8Array(data) }),
        onEvent: (e) => node.events.push(e),
      });
      this.nodes.set(name, node);
    });
  }

  node(name: string): Node { return this.nodes.get(name)!; }
  pub(name: string): Uint8Array { return this.node(name).key.publicKey; }

  /** Sends data from a to b through the manager. */
  send(a: string, b: string, data: Uint8Array): boolean { return this.node(a).m.send(this.pub(b), data); }

  /** Delivers in-flight datagrams (FIFO) until the wire is empty or `max` were delivered. */
  flush(max = 10_000): number {
    let n = 0;
    while (this.wire.length > 0 && n < max) {
      const f = this.wire.shift()!;
      this.node(f.to).m.receive(f.packet);
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
