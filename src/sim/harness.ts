// Runs two transport Connections against each other over simulated links on a virtual
// clock. Deterministic: the same seed and script give the same trace.
import { Connection } from '../transport/connection.js';
import type { ConnectionOptions, TransportEvent } from '../transport/types.js';
import { EventQueue, Link, prng, type LinkConfig } from './network.js';

export interface Endpoint {
  name: 'a' | 'b';
  conn: Connection;
  /** called with the events after every step of this endpoint */
  onEvents?: (events: TransportEvent[], now: number) => void;
}

export interface PathConfig {
  ab: LinkConfig;
  ba: LinkConfig;
}

export class SimPair {
  readonly q = new EventQueue();
  readonly rand: () => number;
  now = 0;
  readonly a: Endpoint;
  readonly b: Endpoint;
  ab: Link;
  ba: Link;
  /** trace of (time, direction, length) for determinism checks */
  trace: Array<[number, string, number]> = [];
  keepTrace = false;
  /** an invariant check after every poll (e.g. bytes in flight ≤ cwnd) */
  checkInvariant?: (c: Connection) => void;
  private wake = { a: Infinity, b: Infinity };

  constructor(seed: number, path: PathConfig, opts: Partial<ConnectionOptions> = {}) {
    this.rand = prng(seed);
    const connRand = prng(seed ^ 0x9e3779b9);
    this.a = { name: 'a', conn: new Connection({ ...opts, side: 0, random: connRand }, 0) };
    this.b = { name: 'b', conn: new Connection({ ...opts, side: 1, random: connRand }, 0) };
    this.ab = new Link(path.ab, this.rand, this.q);
    this.ba = new Link(path.ba, this.rand, this.q);
  }

  /**
   * Replaces both links at time t and tells both connections the path changed. Packets on
   * the old links still arrive unless `oldPathDies` (e.g. a NAT rebinding): then they are lost.
   */
  switchPath(t: number, path: PathConfig, opts: { oldPathDies?: boolean } = {}): void {
    this.q.push(t, () => {
      if (opts.oldPathDies) {
        this.ab.cut(t);
        this.ba.cut(t);
      }
      this.ab = new Link(path.ab, this.rand, this.q);
      this.ba = new Link(path.ba, this.rand, this.q);
      this.a.conn.pathChanged(this.now);
      this.b.conn.pathChanged(this.now);
      this.step(this.a);
      this.step(this.b);
    });
  }

  /** runs fn at virtual time t (then lets both endpoints send) */
  at(t: number, fn: () => void): void {
    this.q.push(t, () => {
      fn();
      this.step(this.a);
      this.step(this.b);
    });
  }

  /** lets an endpoint send what it can now and re-arms its timer */
  step(e: Endpoint): void {
    const c = e.conn;
    const out = c.poll(this.now);
    if (this.checkInvariant) this.checkInvariant(c);
    const link = e.name === 'a' ? this.ab : this.ba;
    const peer = e.name === 'a' ? this.b : this.a;
    for (const pkt of out) {
      if (this.keepTrace) this.trace.push([this.now, e.name, pkt.length]);
      link.send(this.now, pkt, (p, t) => {
        this.now = t;
        peer.conn.receive(p, t);
        this.step(peer);
      });
    }
    const ev = c.pollEvents();
    if (ev.length && e.onEvents) {
      e.onEvents(ev, this.now);
      // the handler may have written: send that too
      const more = c.poll(this.now);
      for (const pkt of more) {
        if (this.keepTrace) this.trace.push([this.now, e.name, pkt.length]);
        link.send(this.now, pkt, (p, t) => {
          this.now = t;
          peer.conn.receive(p, t);
          this.step(peer);
        });
      }
      const ev2 = c.pollEvents();
      if (ev2.length) e.onEvents(ev2, this.now);
    }
    const d = c.nextDeadline();
    const wakeAt = Math.max(d, this.now + 0.001);
    if (d !== Infinity && wakeAt < this.wake[e.name]) {
      this.wake[e.name] = wakeAt;
      this.q.push(wakeAt, () => {
        if (this.wake[e.name] !== wakeAt) return;
        this.wake[e.name] = Infinity;
        this.now = wakeAt;
        this.step(e);
      });
    }
  }

  /** runs until `until` (virtual ms) or until `done()` is true; returns the stop time */
  run(until: number, done?: () => boolean, maxEvents = 5_000_000): number {
    this.step(this.a);
    this.step(this.b);
    let n = 0;
    while (this.q.size > 0 && n++ < maxEvents) {
      if (done && done()) break;
      const t = this.q.peekTime();
      if (t > until) break;
      const ev = this.q.pop()!;
      this.now = Math.max(this.now, ev.t);
      ev.fn();
    }
    return this.now;
  }
}
