// The per-peer path state machine (sans-I/O) and the inner message codec.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { HEARTBEAT_MS, HOLD_DOWN_ACKS, PeerPaths, SILENT_MS } from '../../src/agent/path.js';
import { decodeInner, encodeCandidates, encodeProbe, encodeTransportInner } from '../../src/agent/inner.js';
import { classify } from '../../src/agent/candidates.js';

const PUB = { address: '198.51.100.7', port: 40000 };
const LAN = { address: '192.168.1.20', port: 40000 };

/** Runs the machine for `ms`, acking every probe sent to an address in `answering` after `rtt` ms. */
function drive(p: PeerPaths, start: number, ms: number, answering: Set<string>, rtt = 10): number {
  let now = start;
  const pending: { at: number; id: Uint8Array; from: { address: string; port: number } }[] = [];
  const end = start + ms;
  while (now < end) {
    for (const a of p.poll(now)) if (answering.has(`${a.to.address}:${a.to.port}`)) pending.push({ at: now + rtt, id: a.id, from: a.to });
    for (let i = pending.length - 1; i >= 0; i--) {
      if (pending[i]!.at <= now) { p.onProbeAck(pending[i]!.id, pending[i]!.from, now); pending.splice(i, 1); }
    }
    now += 10;
  }
  return now;
}

describe('PeerPaths', () => {
  it('starts on the relay, goes direct on the first confirmed probe, falls back after silence, and keeps re-probing', () => {
    const p = new PeerPaths(false);
    expect(p.active.kind).toBe('relay');
    p.addSignalled([PUB], 0);
    let now = drive(p, 0, 1000, new Set([`${PUB.address}:${PUB.port}`]));
    expect(p.active).toMatchObject({ kind: 'direct', address: PUB.address });
    expect(p.takeChanges().map((c) => c.reason)).toEqual(['probe confirmed']);
    // the path goes dark: nothing answers any more
    now = drive(p, now, SILENT_MS + 2 * HEARTBEAT_MS, new Set());
    expect(p.active.kind).toBe('relay');
    expect(p.takeChanges()[0]!.reason).toMatch(/no packet over the direct path/);
    // probes continue while on the relay
    expect(p.poll(now + 10_000).length).toBeGreaterThan(0);
  });

  it('does not flap: after a fallback the same candidate needs several acks in a row', () => {
    const p = new PeerPaths(false);
    p.addSignalled([PUB], 0);
    let now = drive(p, 0, 500, new Set([`${PUB.address}:${PUB.port}`]));
    now = drive(p, now, SILENT_MS + 2 * HEARTBEAT_MS, new Set());
    p.takeChanges();
    // one probe answered, then silence: not enough to return
    const probes = p.poll(now + 6000);
    expect(probes.length).toBe(1);
    p.onProbeAck(probes[0]!.id, probes[0]!.to, now + 6010);
    expect(p.active.kind).toBe('relay');
    // HOLD_DOWN_ACKS consecutive answers bring it back
    drive(p, now + 6020, 20_000, new Set([`${PUB.address}:${PUB.port}`]));
    expect(p.active.kind).toBe('direct');
    expect(HOLD_DOWN_ACKS).toBeGreaterThan(1);
  });

  it('upgrades to a preferred class (LAN over public) but never downgrades while the active path works', () => {
    const p = new PeerPaths(false);
    p.addSignalled([PUB], 0);
    let now = drive(p, 0, 500, new Set([`${PUB.address}:${PUB.port}`]));
    expect(p.active).toMatchObject({ address: PUB.address });
    p.addSignalled([LAN], now);
    now = drive(p, now, 8000, new Set([`${PUB.address}:${PUB.port}`, `${LAN.address}:${LAN.port}`]));
    expect(p.active).toMatchObject({ address: LAN.address });
    const changes = p.takeChanges();
    expect(changes.at(-1)!.reason).toBe('preferred path confirmed');
    // public keeps answering, LAN keeps answering: no switch back
    drive(p, now, 10_000, new Set([`${PUB.address}:${PUB.port}`, `${LAN.address}:${LAN.port}`]));
    expect(p.takeChanges()).toEqual([]);
  });

  it('follows the peer to a new address when the old one goes quiet (NAT rebinding)', () => {
    const p = new PeerPaths(false);
    p.addSignalled([PUB], 0);
    let now = drive(p, 0, 500, new Set([`${PUB.address}:${PUB.port}`]));
    const moved = { address: PUB.address, port: 41234 };
    p.onDirectPacket(moved, now); // an authenticated packet from the new mapping
    now = drive(p, now, 2500, new Set([`${moved.address}:${moved.port}`]));
    expect(p.active).toMatchObject({ kind: 'direct', port: 41234 });
  });

  it('ignores an ack that arrives from another address than the one probed (symmetric NAT)', () => {
    const p = new PeerPaths(false);
    p.addSignalled([PUB], 0);
    const [probe] = p.poll(0);
    p.onProbeAck(probe!.id, { address: PUB.address, port: 50000 }, 5);
    expect(p.active.kind).toBe('relay');
  });

  it('--relay-only: no candidates kept, no probes, never direct', () => {
    const p = new PeerPaths(true);
    p.addSignalled([PUB, LAN], 0);
    p.onDirectPacket(PUB, 0);
    expect(p.candidateCount).toBe(0);
    expect(p.poll(1000)).toEqual([]);
    expect(p.nextDeadline()).toBe(Infinity);
  });
});

describe('inner messages', () => {
  it('round-trip: candidates (v4 and v6), probes, transport', () => {
    const cands = [{ address: '10.0.0.1', port: 1 }, { address: '2001:db8::1', port: 65535 }, { address: '::ffff:192.0.2.1', port: 3478 }];
    const d = decodeInner(encodeCandidates(cands));
    expect(d.type).toBe('candidates');
    const got = (d as { candidates: { address: string; port: number }[] }).candidates;
    expect(got[0]).toEqual(cands[0]);
    expect(got.map((c) => c.port)).toEqual([1, 65535, 3478]);
    expect(got[1]!.address.replace(/(^|:)0+(?=[0-9a-f])/g, '$1')).toMatch(/^2001:db8:/);
    const id = new Uint8Array(8).fill(9);
    expect(decodeInner(encodeProbe('probe', id))).toMatchObject({ type: 'probe' });
    expect(decodeInner(encodeProbe('probeAck', id))).toMatchObject({ type: 'probeAck' });
    expect(decodeInner(encodeTransportInner(new Uint8Array([1, 2, 3])))).toMatchObject({ type: 'transport', packet: new Uint8Array([1, 2, 3]) });
  });

  it('never throws on garbage, and rejects truncations of valid messages', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (junk) => { expect(() => decodeInner(junk)).not.toThrow(); }), { numRuns: 2000 });
    const good = encodeCandidates([{ address: '10.0.0.1', port: 5 }, { address: '10.0.0.2', port: 6 }]);
    for (let n = 1; n < good.length; n++) expect(decodeInner(good.subarray(0, n)).type).toBe('invalid');
    expect(decodeInner(encodeProbe('probe', new Uint8Array(8)).subarray(0, 5)).type).toBe('invalid');
  });

  it('classifies candidate addresses', () => {
    expect(classify('127.0.0.1')).toBe('loopback');
    expect(classify('192.168.3.4')).toBe('lan');
    expect(classify('100.64.0.9')).toBe('lan');
    expect(classify('172.20.1.1')).toBe('lan');
    expect(classify('8.8.8.8')).toBe('public');
  });
});
