// SessionManager under handshake floods (issue #12, row 7), on a fake clock with string
// endpoints: what a replayed or forged initiation costs in Diffie-Hellman operations, the
// cookie reply under load and the initiator's retry with mac2, sources that cannot be
// spoofed into someone else's budget, and the global bound when no sources are named.
import { describe, it, expect } from 'vitest';
import { generateKeyPair, dhCounter, type KeyPair } from '../../src/noise/index.js';
import { PeerKey } from '../../src/common/peer-key.js';
import { SessionManager, type ReceiveResult, type SessionManagerOptions } from '../../src/session/index.js';
import { computeMac, mac1Key } from '../../src/session/mac.js';
import { INITIATION_LEN, MAC_LEN, MSG_COOKIE_REPLY, MSG_INITIATION } from '../../src/session/wire.js';

interface Sent { packet: Uint8Array; to: string | null }
interface Side { key: KeyPair; pub: PeerKey; m: SessionManager<string>; out: Sent[]; cookieReplies: Sent[]; delivered: string[] }

class Clock { now = 1_000; wall = Date.UTC(2026, 11, 1); advance(ms: number): void { this.now += ms; this.wall += ms; } }

/** Parties that name sources (`source` option): an endpoint string is its own source bytes. */
function parties(n: number, opts: Partial<SessionManagerOptions<string>> = {}, withSources = true): { clock: Clock; sides: Side[] } {
  const clock = new Clock();
  const keys = Array.from({ length: n }, () => generateKeyPair());
  const sides = keys.map((key, i): Side => {
    const side: Side = { key, pub: PeerKey.fromBytes(key.publicKey), out: [], cookieReplies: [], delivered: [], m: undefined as unknown as SessionManager<string> };
    side.m = new SessionManager<string>({
      staticKey: key,
      peers: keys.filter((_, j) => j !== i).map((k) => PeerKey.fromBytes(k.publicKey)),
      clock: () => clock.now,
      wallClock: () => clock.wall,
      transmit: (_peer, packet, to) => side.out.push({ packet: new Uint8Array(packet), to }),
      deliver: (_peer, data) => side.delivered.push(new TextDecoder().decode(data)),
      source: withSources ? { bytesOf: (from) => new TextEncoder().encode(from), reply: (packet, to) => side.cookieReplies.push({ packet: new Uint8Array(packet), to }) } : undefined,
      ...opts,
    });
    return side;
  });
  return { clock, sides };
}

/** The next datagram `side` transmitted, of the given type. */
function take(side: Side, type: number): Uint8Array {
  const i = side.out.findIndex((s) => s.packet[0] === type);
  if (i < 0) throw new Error(`no datagram of type ${type} sent`);
  return side.out.splice(i, 1)[0]!.packet;
}

/** A mac1-valid initiation to `to` with random Noise bytes: costs a DH unless screened. */
function forgedInitiation(to: PeerKey): Uint8Array {
  const raw = new Uint8Array(INITIATION_LEN);
  raw[0] = MSG_INITIATION;
  crypto.getRandomValues(raw.subarray(4, INITIATION_LEN - 2 * MAC_LEN));
  raw.set(computeMac(mac1Key(to.bytes), raw.subarray(0, INITIATION_LEN - 2 * MAC_LEN)), INITIATION_LEN - 2 * MAC_LEN);
  return raw;
}

function dhDuring(fn: () => void): number {
  const before = dhCounter.operations;
  fn();
  return dhCounter.operations - before;
}

/** a initiates to b; every datagram is delivered until the handshake settles. */
function handshake(a: Side, b: Side, aAddr = 'a:1', bAddr = 'b:1'): void {
  a.m.connect(b.pub);
  for (let rounds = 0; rounds < 10 && (a.out.length || b.out.length || a.cookieReplies.length || b.cookieReplies.length); rounds++) {
    for (const s of a.out.splice(0)) b.m.receive(s.packet, aAddr);
    for (const s of a.cookieReplies.splice(0)) b.m.receive(s.packet, aAddr);
    for (const s of b.out.splice(0)) a.m.receive(s.packet, bAddr);
    for (const s of b.cookieReplies.splice(0)) a.m.receive(s.packet, bAddr);
  }
}

describe('handshake floods before any DH', () => {
  it('one captured initiation replayed from 10 000 spoofed sources costs no DH after the first', () => {
    const { sides: [a, b] } = parties(2);
    a.m.connect(b.pub);
    const init = take(a!, MSG_INITIATION);
    expect(b!.m.receive(new Uint8Array(init), 'a:1')).toMatchObject({ kind: 'handshake', answered: true });
    const results: ReceiveResult[] = [];
    const dh = dhDuring(() => { for (let i = 0; i < 10_000; i++) results.push(b!.m.receive(new Uint8Array(init), `spoof:${i}`)); });
    expect(dh).toBe(0);
    expect(new Set(results.map((r) => (r.kind === 'dropped' ? r.reason : r.kind)))).toEqual(new Set(['duplicate_initiation']));
    expect(b!.cookieReplies.length).toBe(0); // exact copies are no load: no cookie replies either
  });

  it('a replayed initiation no longer among the recent ones costs one DH (es) and is refused by its timestamp', () => {
    const { clock, sides: [a, b] } = parties(2, { initiationLimits: { recentInitiations: 1 } });
    a!.m.connect(b!.pub);
    const x = take(a!, MSG_INITIATION);
    expect(b!.m.receive(new Uint8Array(x), 'a:1')).toMatchObject({ kind: 'handshake' });
    clock.advance(1_000);
    a!.m.connect(b!.pub, true);
    expect(b!.m.receive(take(a!, MSG_INITIATION), 'a:1')).toMatchObject({ kind: 'handshake' }); // evicts x (the table holds 1)
    clock.advance(1_000);
    let r: ReceiveResult | undefined;
    const dh = dhDuring(() => { r = b!.m.receive(x, 'a:1'); });
    expect(r).toMatchObject({ kind: 'dropped', reason: 'replayed_initiation' });
    expect(dh).toBe(1);
  });

  it('an initiation from a stranger (valid mac1, a key outside the session) costs one DH', () => {
    const { sides: [a, b] } = parties(2);
    const stranger = parties(2).sides[0]!; // its peers are others: it initiates with its own key
    const m = new SessionManager<string>({
      staticKey: stranger.key, peers: [b!.pub], transmit: (_p, packet) => stranger.out.push({ packet: new Uint8Array(packet), to: null }), deliver: () => {},
    });
    m.connect(b!.pub);
    let r: ReceiveResult | undefined;
    const dh = dhDuring(() => { r = b!.m.receive(take(stranger, MSG_INITIATION), 'x:1'); });
    expect(r).toMatchObject({ kind: 'dropped', reason: 'unknown_peer' });
    expect(dh).toBe(1);
    expect(a!.m.info(b!.pub).established).toBe(false);
  });
});

describe('cookies under load', () => {
  const loadLimits = { initiationLimits: { underLoadPerSecond: 3 } };

  /** Pushes b under load with forged initiations from many sources; returns their DH cost. */
  function flood(b: Side, count: number): number {
    return dhDuring(() => { for (let i = 0; i < count; i++) b.m.receive(forgedInitiation(b.pub), `flood:${i}`); });
  }

  it('an initiation without a valid mac2 gets a cookie reply and no DH; the initiator retries with mac2 at once and the handshake completes', () => {
    const { sides: [a, b] } = parties(2, loadLimits);
    const floodDh = flood(b!, 200);
    expect(floodDh).toBeLessThanOrEqual(3 + 1); // only the first few, before the load was noticed
    expect(b!.cookieReplies.length).toBeGreaterThan(190);
    expect(new Set(b!.cookieReplies.slice(-10).map((s) => s.to?.startsWith('flood:')))).toEqual(new Set([true]));
    b!.cookieReplies.length = 0;

    a!.m.connect(b!.pub);
    const first = take(a!, MSG_INITIATION);
    expect(first.subarray(INITIATION_LEN - MAC_LEN).every((x) => x === 0)).toBe(true); // no cookie yet
    let r: ReceiveResult | undefined;
    expect(dhDuring(() => { r = b!.m.receive(first, 'a:1'); })).toBe(0);
    expect(r).toMatchObject({ kind: 'dropped', reason: 'cookie_sent' });
    const cookie = b!.cookieReplies.pop()!;
    expect(cookie.to).toBe('a:1');
    expect(cookie.packet[0]).toBe(MSG_COOKIE_REPLY);
    expect(a!.m.receive(cookie.packet, 'b:1')).toMatchObject({ kind: 'dropped', reason: 'cookie_accepted' }); // consumed: nothing to deliver
    const retry = a!.out.pop()!;
    expect(retry.to).toBe('b:1'); // back where the cookie came from
    expect(Buffer.from(retry.packet.subarray(0, INITIATION_LEN - MAC_LEN)).equals(Buffer.from(first.subarray(0, INITIATION_LEN - MAC_LEN)))).toBe(true);
    expect(retry.packet.subarray(INITIATION_LEN - MAC_LEN).some((x) => x !== 0)).toBe(true);
    expect(b!.m.receive(retry.packet, 'a:1')).toMatchObject({ kind: 'handshake', answered: true });
    a!.m.receive(take(b!, 0x12), 'b:1');
    expect(a!.m.info(b!.pub).established).toBe(true);
    // a second cookie reply for the same initiation is not taken
    expect(a!.m.receive(cookie.packet, 'b:1')).toMatchObject({ kind: 'dropped' });
  });

  it('the cookie is bound to the source: the same mac2 from another source gets a cookie reply, not a handshake', () => {
    const { sides: [a, b] } = parties(2, loadLimits);
    flood(b!, 50);
    a!.m.connect(b!.pub);
    b!.m.receive(take(a!, MSG_INITIATION), 'a:1');
    a!.m.receive(b!.cookieReplies.pop()!.packet, 'b:1');
    const retry = a!.out.pop()!.packet;
    expect(b!.m.receive(new Uint8Array(retry), 'elsewhere:9')).toMatchObject({ kind: 'dropped', reason: 'cookie_sent' });
    expect(b!.m.receive(retry, 'a:1')).toMatchObject({ kind: 'handshake' });
  });

  it('a spoofer sending as the victim\'s source cannot spend the victim\'s budget: the victim still gets in', () => {
    const { sides: [a, b] } = parties(2, { initiationLimits: { underLoadPerSecond: 3, perSource: { perSecond: 1, burst: 2 } } });
    flood(b!, 50);
    // 1000 forged initiations claiming to come from a's address: each gets a cookie reply
    // (sent to a, who never asked for them), none reaches the DH stage or a's budget
    const spoofDh = dhDuring(() => { for (let i = 0; i < 1000; i++) b!.m.receive(forgedInitiation(b!.pub), 'a:1'); });
    expect(spoofDh).toBe(0);
    const unsolicited = b!.cookieReplies.splice(0).filter((s) => s.to === 'a:1');
    expect(unsolicited.length).toBe(1000);
    for (const s of unsolicited.slice(0, 20)) expect(a!.m.receive(s.packet, 'b:1').kind).toBe('dropped');
    handshake(a!, b!);
    expect(a!.m.info(b!.pub).established).toBe(true);
  });

  it('without named sources there are no cookies; under load the global budget bounds the DH work', () => {
    const { clock, sides: [, b] } = parties(2, { initiationLimits: { underLoadPerSecond: 3, global: { perSecond: 10, burst: 5 } } }, false);
    let dh = 0;
    const reasons = new Map<string, number>();
    for (let ms = 0; ms < 2_000; ms++) {
      clock.advance(1);
      dh += dhDuring(() => {
        const r = b!.m.receive(forgedInitiation(b!.pub), 'x');
        if (r.kind === 'dropped') reasons.set(r.reason, (reasons.get(r.reason) ?? 0) + 1);
      });
    }
    // 2000 forged initiations in 2 s: at most burst + 2 s × 10/s reach the DH stage, 1 DH each
    expect(dh).toBeGreaterThanOrEqual(20);
    expect(dh).toBeLessThanOrEqual(5 + 20 + 1);
    expect(reasons.get('handshake_budget_exhausted')).toBeGreaterThan(1900);
    expect(b!.cookieReplies.length).toBe(0);
  });
});
