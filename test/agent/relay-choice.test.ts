// The relay a relayed pair uses (chooseRelay, src/agent/relay-set.ts): the side with the
// smaller key leads, the other follows the relay it last heard the leader on. The two sides
// are modelled as they run in the agents: each sends through its choice, the receiver notes
// the relay it heard the packet on, and their registrations (masks) change over time.
import { describe, it, expect } from 'vitest';
import { chooseRelay } from '../../src/agent/relay-set.js';

interface Side { mine: number; peerMask: number | undefined; lastHeard: number | undefined; leads: boolean }

/** `exchanges` round trips: a packet each way per step; returns the relay each side sent on, per step */
function run(a: Side, b: Side, exchanges: number, change?: (step: number) => void): Array<[number | undefined, number | undefined]> {
  const used: Array<[number | undefined, number | undefined]> = [];
  for (let step = 0; step < exchanges; step++) {
    change?.(step);
    // both send at once (the packets cross), as in a round of MPC traffic
    const ra = chooseRelay(a.mine, a.peerMask, a.lastHeard, a.leads);
    const rb = chooseRelay(b.mine, b.peerMask, b.lastHeard, b.leads);
    if (ra !== undefined && (b.mine & (1 << ra)) !== 0) b.lastHeard = ra;
    if (rb !== undefined && (a.mine & (1 << rb)) !== 0) a.lastHeard = rb;
    used.push([ra, rb]);
  }
  return used;
}

describe('chooseRelay', () => {
  it('the leader takes the first common relay in session order; the follower the one it heard the leader on', () => {
    expect(chooseRelay(0b11, 0b11, 1, true)).toBe(0);
    expect(chooseRelay(0b11, 0b11, 1, false)).toBe(1);
    expect(chooseRelay(0b11, 0b10, undefined, true)).toBe(1); // the peer is on relay 1 only
    expect(chooseRelay(0b01, 0b11, 1, false)).toBe(0); // heard on a relay we are not registered on
    expect(chooseRelay(0b110, undefined, undefined, true)).toBe(1); // peer's set unknown: all of ours
    expect(chooseRelay(0b01, 0b10, undefined, true)).toBe(0); // nothing in common: one of ours
    expect(chooseRelay(0, 0b11, 0, false)).toBeUndefined();
  });

  it('two sides that started on different relays end on one relay after one exchange and stay there', () => {
    // registrations answered in opposite orders: each heard the other on the other relay
    const a: Side = { mine: 0b11, peerMask: 0b11, lastHeard: 0, leads: true };
    const b: Side = { mine: 0b11, peerMask: 0b11, lastHeard: 1, leads: false };
    const used = run(a, b, 50);
    expect(used.slice(1).every(([x, y]) => x === 0 && y === 0)).toBe(true);
  });

  it('the control: when both sides follow, they swap relays with every exchange and never meet', () => {
    const a: Side = { mine: 0b11, peerMask: 0b11, lastHeard: 0, leads: false };
    const b: Side = { mine: 0b11, peerMask: 0b11, lastHeard: 1, leads: false };
    const used = run(a, b, 50);
    expect(used.every(([x, y]) => x !== y)).toBe(true);
  });

  it('the leader losing its first relay moves the pair to the next common one; it moves back when the relay returns', () => {
    const a: Side = { mine: 0b11, peerMask: 0b11, lastHeard: undefined, leads: true };
    const b: Side = { mine: 0b11, peerMask: 0b11, lastHeard: undefined, leads: false };
    const used = run(a, b, 30, (step) => {
      if (step === 10) { a.mine = 0b10; b.peerMask = 0b10; } // relay 0 lost at the leader (and RELAYS told b)
      if (step === 20) { a.mine = 0b11; b.peerMask = 0b11; }
    });
    expect(used.slice(1, 10).every(([x, y]) => x === 0 && y === 0)).toBe(true);
    expect(used.slice(11, 20).every(([x, y]) => x === 1 && y === 1)).toBe(true);
    expect(used.slice(21).every(([x, y]) => x === 0 && y === 0)).toBe(true);
  });

  it('the follower losing the relay it follows moves to the next common one, and the leader joins it once told', () => {
    const a: Side = { mine: 0b11, peerMask: 0b11, lastHeard: undefined, leads: true };
    const b: Side = { mine: 0b11, peerMask: 0b11, lastHeard: undefined, leads: false };
    const used = run(a, b, 20, (step) => {
      if (step === 5) b.mine = 0b10; // relay 0 lost at the follower
      if (step === 7) a.peerMask = 0b10; // its RELAYS message reached the leader
    });
    expect(used[5]).toEqual([0, 1]); // one step split: the leader does not know yet
    expect(used.slice(7).every(([x, y]) => x === 1 && y === 1)).toBe(true);
  });
});
