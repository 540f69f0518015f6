// The per-peer path state machine (sans-I/O) and the inner message codec.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { HEARTBEAT_MS, HOLD_DOWN_ACKS, PeerPaths, SILENT_MS } from '../../src/agent/path.js';
import { decodeInner, encodeCandidates, encodeProbe, encodeRelays, transportInnerInPlace, withLocalZones } from '../../src/agent/inner.js';
import { canonicalIp, ipBytes, ipText } from '../../src/agent/addresses.js';
import { candidateKey, classify, gatherInterfaceCandidates, linkLocalZones } from '../../src/agent/candidates.js';
import { networkInterfaces } from 'node:os';

const PUB = { address: '198.51.100.7', port: 40000 };
const LAN = { address: '192.168.1.20', port: 40000 };

/** Runs the machine for `ms`, acking every probe sent to an address in `answering` after `rtt` ms. */
function drive(p: PeerPaths, start: number, ms: number, answering: Set<string>, rtt: number | ((key: string) => number) = 10, step = 10): number {
  const rttOf = typeof rtt === 'number' ? () => rtt : rtt;
  let now = start;
  const pending: { at: number; id: Uint8Array; from: { address: string; port: number } }[] = [];
  const end = start + ms;
  while (now < end) {
    for (const a of p.poll(now)) {
      const key = candidateKey(a.to);
      if (answering.has(key)) pending.push({ at: now + rttOf(key), id: a.id, from: a.to });
    }
    for (let i = pending.length - 1; i >= 0; i--) {
      if (pending[i]!.at <= now) { p.onProbeAck(pending[i]!.id, pending[i]!.from, now); pending.splice(i, 1); }
    }
    now += step;
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

  it('among confirmed paths of one class the clearly faster one wins, and two similar ones never flap', () => {
    const SLOW = { address: '192.168.1.20', port: 40000 };
    const FAST = { address: 'fd00::20', port: 40000 };
    const p = new PeerPaths(false);
    p.addSignalled([SLOW], 0);
    let now = drive(p, 0, 1000, new Set([candidateKey(SLOW)]), 20);
    expect(p.active).toMatchObject({ kind: 'direct', address: SLOW.address });
    p.addSignalled([FAST], now);
    const rtts = (k: string): number => (k === candidateKey(FAST) ? 2 : 20);
    now = drive(p, now, 30_000, new Set([candidateKey(SLOW), candidateKey(FAST)]), rtts, 1);
    expect(p.active).toMatchObject({ kind: 'direct', address: FAST.address });
    const changes = p.takeChanges();
    expect(changes.at(-1)!.reason).toMatch(/lower RTT/);
    // the slow one never takes over again
    now = drive(p, now, 30_000, new Set([candidateKey(SLOW), candidateKey(FAST)]), rtts, 1);
    expect(p.takeChanges()).toEqual([]);
    // similar RTTs (16 vs 20 ms, not below 0.7×): whichever came first stays
    const q = new PeerPaths(false);
    q.addSignalled([SLOW], 0);
    let t = drive(q, 0, 1000, new Set([candidateKey(SLOW)]), 20);
    q.addSignalled([FAST], t);
    t = drive(q, t, 60_000, new Set([candidateKey(SLOW), candidateKey(FAST)]), (k) => (k === candidateKey(FAST) ? 16 : 20), 1);
    expect(q.active).toMatchObject({ kind: 'direct', address: SLOW.address });
    expect(q.takeChanges().length).toBe(1);
    expect(p.activeInfo()).toMatchObject({ source: 'interface' });
    expect(p.activeInfo()!.rttMs!).toBeLessThan(5);
    expect(q.activeInfo()!.rttMs!).toBeGreaterThan(15);
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

  it('an address first seen as peer-reflexive and then signalled takes the signalled source (the race of who speaks first)', () => {
    const p = new PeerPaths(false);
    // the peer's probe arrives before its candidate list
    p.onDirectPacket(LAN, 0);
    drive(p, 0, 500, new Set([`${LAN.address}:${LAN.port}`]));
    expect(p.active).toMatchObject({ kind: 'direct', address: LAN.address });
    expect(p.activeInfo()?.source).toBe('observed');
    p.addSignalled([{ ...LAN, source: 'interface' }], 600);
    expect(p.activeInfo()?.source).toBe('interface');
    // a later observation of the same address does not undo what the peer said
    p.onDirectPacket(LAN, 700);
    expect(p.activeInfo()?.source).toBe('interface');
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
  it('round-trip: candidates (v4 and v6, with their source), probes, pings, relays, transport', () => {
    const cands = [
      { address: '10.0.0.1', port: 1, source: 'interface' as const },
      { address: '2001:db8::1', port: 65535, source: 'stun' as const },
      { address: '::ffff:192.0.2.1', port: 3478, source: 'portmap' as const },
    ];
    const d = decodeInner(encodeCandidates(cands));
    expect(d).toEqual({ type: 'candidates', candidates: cands });
    const id = new Uint8Array(8).fill(9);
    for (const kind of ['probe', 'probeAck', 'ping', 'pong'] as const) expect(decodeInner(encodeProbe(kind, id))).toEqual({ type: kind, id });
    expect(decodeInner(encodeRelays(0b101))).toEqual({ type: 'relays', mask: 5 });
    expect(decodeInner(encodeRelays(0x80000000))).toEqual({ type: 'relays', mask: 0x80000000 });
    const packet = new Uint8Array([9, 1, 2, 3]).subarray(1);
    const inner = transportInnerInPlace(packet);
    expect(inner.buffer).toBe(packet.buffer); // in place: the type byte went into the headroom
    expect(decodeInner(inner)).toMatchObject({ type: 'transport', packet: new Uint8Array([1, 2, 3]) });
    expect(() => transportInnerInPlace(new Uint8Array([1, 2, 3]))).toThrow(RangeError);
  });

  it('IPv6 candidates travel as bytes and come back in canonical RFC 5952 text; zones stay local', () => {
    const spellings: [string, string][] = [
      ['1:0:0:2:0:0:0:3', '1:0:0:2::3'], ['1:0:0:0:2:0:0:3', '1::2:0:0:3'], ['2001:DB8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
      ['0:0:0:0:0:0:0:1', '::1'], ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], ['fd00::2', 'fd00::2'],
    ];
    for (const [written, canonical] of spellings) {
      expect(canonicalIp(written)).toBe(canonical);
      const got = decodeInner(encodeCandidates([{ address: written, port: 9 }]));
      expect(got).toMatchObject({ type: 'candidates', candidates: [{ address: canonical, port: 9 }] });
    }
    // a link-local address keeps its zone here, loses it on the wire, and the receiver
    // tries it on each of its own link-local interfaces
    expect(canonicalIp('FE80:0:0:0:0:0:0:1%eth0')).toBe('fe80::1%eth0');
    const sent = decodeInner(encodeCandidates([{ address: 'fe80::1%eth0', port: 7 }]));
    expect(sent).toMatchObject({ candidates: [{ address: 'fe80::1', port: 7 }] });
    const c = (sent as { candidates: { address: string; port: number }[] }).candidates[0]!;
    expect(withLocalZones(c, ['eth0', 'wlan0']).map((x) => x.address)).toEqual(['fe80::1%eth0', 'fe80::1%wlan0']);
    expect(withLocalZones({ address: '2001:db8::1', port: 7 }, ['eth0'])).toEqual([{ address: '2001:db8::1', port: 7 }]);
    fc.assert(fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (b) => {
      const text = ipText(b);
      expect(canonicalIp(text)).toBe(text);
      expect([...ipBytes(text)!]).toEqual([...b]);
    }), { numRuns: 500 });
  });

  it('never throws on garbage, and rejects truncations of valid messages', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (junk) => { expect(() => decodeInner(junk)).not.toThrow(); }), { numRuns: 2000 });
    const good = encodeCandidates([{ address: '10.0.0.1', port: 5 }, { address: '10.0.0.2', port: 6 }]);
    for (let n = 1; n < good.length; n++) expect(decodeInner(good.subarray(0, n)).type).toBe('invalid');
    expect(decodeInner(encodeProbe('probe', new Uint8Array(8)).subarray(0, 5)).type).toBe('invalid');
  });

  it('gathers every interface address of each socket\'s family: IPv6 global, unique-local and link-local with its zone', () => {
    const all = gatherInterfaceCandidates({ v4: { host: '0.0.0.0', port: 4000 }, v6: { host: '::', port: 6000 } });
    const expected = Object.entries(networkInterfaces()).flatMap(([name, list]) => (list ?? []).map((ni) =>
      ni.family === 'IPv4' ? `${ni.address}:4000` : `[${canonicalIp(/^fe[89ab]/i.test(ni.address) ? `${ni.address}%${name}` : ni.address)}]:6000`));
    expect(all.map(candidateKey).sort()).toEqual(expected.sort());
    expect(all.every((c) => c.source === 'interface')).toBe(true);
    for (const c of all.filter((x) => /^fe[89ab]/i.test(x.address))) expect(c.address).toMatch(/%\w+$/);
    expect(linkLocalZones()).toEqual(Object.entries(networkInterfaces())
      .filter(([, l]) => (l ?? []).some((ni) => ni.family === 'IPv6' && /^fe[89ab]/i.test(ni.address))).map(([n]) => n));
    // a socket bound to one address offers that one; an IPv4-only agent no IPv6 at all
    expect(gatherInterfaceCandidates({ v6: { host: '::1', port: 7 } })).toEqual([{ address: '::1', port: 7, source: 'interface' }]);
    expect(gatherInterfaceCandidates({ v4: { host: '0.0.0.0', port: 4000 } }).every((c) => !c.address.includes(':'))).toBe(true);
    // best first: loopback, then LAN, then public
    const prefs = all.map((c) => classify(c.address));
    expect([...prefs].sort((x, y) => ['loopback', 'lan', 'public'].indexOf(x) - ['loopback', 'lan', 'public'].indexOf(y))).toEqual(prefs);
  });

  it('classifies candidate addresses', () => {
    expect(classify('127.0.0.1')).toBe('loopback');
    expect(classify('192.168.3.4')).toBe('lan');
    expect(classify('100.64.0.9')).toBe('lan');
    expect(classify('172.20.1.1')).toBe('lan');
    expect(classify('8.8.8.8')).toBe('public');
    expect(classify('::1')).toBe('loopback');
    expect(classify('fd12:3456::1')).toBe('lan');
    expect(classify('fe80::1%eth0')).toBe('lan');
    expect(classify('2001:db8::1')).toBe('public');
    expect(classify('fdomain.example')).toBe('public');
  });
});
