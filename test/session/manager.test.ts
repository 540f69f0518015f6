import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { generateKeyPair } from '../../src/noise/index.js';
import { SessionManager, TRANSPORT_OVERHEAD_LEN, sessionConstants as C, sessionWire as W } from '../../src/session/index.js';
import { PeerKey } from '../../src/common/peer-key.js';
import { Net, pathOf, str, text } from './manager-harness.js';

function established(net: Net, a = 'a', b = 'b'): void {
  net.send(a, b, text('hello'));
  net.flush();
  expect(net.node(b).delivered.map((d) => str(d.data))).toEqual(['hello']);
}

describe('SessionManager handshake and data', () => {
  it('queues until the handshake completes, then both sides send; the responder waits for confirmation', () => {
    const net = new Net(['a', 'b']);
    expect(net.send('a', 'b', text('first'))).toBe(false); // queued, initiation on the wire
    expect(net.wire.map((f) => f.packet[0])).toEqual([W.MSG_INITIATION]);
    expect(net.wire[0]!.packet.length).toBe(W.INITIATION_LEN);
    net.flush(1); // initiation → b; b answers but may not send yet
    expect(net.node('b').m.info(net.pub('a')).established).toBe(false);
    expect(net.wire.map((f) => f.packet[0])).toEqual([W.MSG_RESPONSE]);
    net.flush(); // response → a; a sends the queued packet, which confirms b
    expect(net.node('b').delivered.map((d) => str(d.data))).toEqual(['first']);
    expect(net.node('b').m.info(net.pub('a')).established).toBe(true);
    expect(net.send('b', 'a', text('reply'))).toBe(true);
    net.flush();
    expect(net.node('a').delivered.map((d) => str(d.data))).toEqual(['reply']);
    expect(net.node('a').events.map((e) => e.type)).toEqual(['established']);
    expect(net.node('b').events.map((e) => e.type)).toEqual(['established']);
  });

  it('confirms with a keepalive when the initiator has nothing queued (connect())', () => {
    const net = new Net(['a', 'b']);
    net.node('a').m.connect(net.pub('b'));
    net.flush();
    expect(net.node('b').m.info(net.pub('a')).established).toBe(true);
    expect(net.node('b').delivered).toEqual([]); // keepalives are not delivered
  });

  it('random payloads round-trip both ways, in order, exactly once', () => {
    const net = new Net(['a', 'b']);
    established(net);
    fc.assert(fc.property(fc.array(fc.tuple(fc.boolean(), fc.uint8Array({ minLength: 1, maxLength: 1300 })), { maxLength: 40 }), (msgs) => {
      const before = { a: net.node('a').delivered.length, b: net.node('b').delivered.length };
      for (const [ab, data] of msgs) net.send(ab ? 'a' : 'b', ab ? 'b' : 'a', data);
      net.flush();
      const gotB = net.node('b').delivered.slice(before.b).map((d) => Buffer.from(d.data).toString('hex'));
      const gotA = net.node('a').delivered.slice(before.a).map((d) => Buffer.from(d.data).toString('hex'));
      expect(gotB).toEqual(msgs.filter(([ab]) => ab).map(([, d]) => Buffer.from(d).toString('hex')));
      expect(gotA).toEqual(msgs.filter(([ab]) => !ab).map(([, d]) => Buffer.from(d).toString('hex')));
    }), { numRuns: 100 });
  });

  it('rejects packets from a key that is not a peer, and refuses to send to one', () => {
    const net = new Net(['a', 'b']);
    const stranger = new SessionManager<string>({
      staticKey: generateKeyPair(), peers: [net.pub('b')],
      transmit: (_p, pkt) => net.wire.push({ from: 'x', to: 'b', packet: pkt, endpoint: null, via: 'x' }),
      deliver: () => {},
    });
    stranger.send(net.pub('b'), text('let me in'));
    net.flush();
    expect(net.node('b').m.drops.get('unknown_peer')).toBe(1);
    expect(net.node('b').delivered).toEqual([]);
    expect(() => net.node('a').m.send(PeerKey.fromBytes(generateKeyPair().publicKey), text('x'))).toThrow(/not a peer/);
  });
});

describe('SessionManager endpoints: explicit, opaque, never guessed', () => {
  it('a response goes to the endpoint its initiation came from; initiations and flushed packets get null; deliver gets from', () => {
    const net = new Net(['a', 'b']);
    net.send('a', 'b', text('queued'));
    expect(net.wire[0]).toMatchObject({ endpoint: null }); // the initiation: the caller's choice
    net.wire[0]!.via = 'relay-7';
    net.flush(1);
    expect(net.wire[0]).toMatchObject({ from: 'b', endpoint: 'relay-7' });
    expect(net.wire[0]!.packet[0]).toBe(W.MSG_RESPONSE);
    net.flush(1);
    expect(net.wire.map((f) => f.endpoint)).toEqual([null]); // the queued packet, flushed
    net.wire[0]!.via = '192.0.2.1:4000';
    net.flush();
    expect(net.node('b').delivered).toEqual([expect.objectContaining({ from: 'a', via: '192.0.2.1:4000' })]);
    net.send('b', 'a', text('reply'));
    expect(net.wire.map((f) => f.endpoint)).toEqual([null]);
    net.flush();
    expect(net.node('a').delivered[0]).toMatchObject({ via: pathOf('b') });
  });

  it('send(peer, plaintext, to) forces the endpoint; without a session it is neither sent, queued, nor a handshake', () => {
    const net = new Net(['a', 'b']);
    expect(net.send('a', 'b', text('probe'), '198.51.100.9:1')).toBe(false);
    expect(net.wire).toEqual([]);
    expect(net.node('a').m.info(net.pub('b'))).toMatchObject({ queued: 0, handshakePending: false });
    established(net);
    expect(net.send('a', 'b', text('probe'), '198.51.100.9:1')).toBe(true);
    expect(net.wire).toEqual([expect.objectContaining({ endpoint: '198.51.100.9:1' })]);
    expect(net.wire[0]!.packet.length).toBe(text('probe').length + TRANSPORT_OVERHEAD_LEN);
  });

  it('the winner of a simultaneous initiation repeats its own to where the loser\'s came from', () => {
    const net = new Net(['a', 'b']);
    const winner = net.pub('a').compare(net.pub('b')) < 0 ? 'a' : 'b';
    const loser = winner === 'a' ? 'b' : 'a';
    net.send(winner, loser, text('w'));
    net.wire.length = 0;
    net.send(loser, winner, text('l'));
    net.wire[0]!.via = 'relay-2';
    net.flush(1);
    expect(net.wire).toEqual([expect.objectContaining({ from: winner, endpoint: 'relay-2' })]);
    expect(net.wire[0]!.packet[0]).toBe(W.MSG_INITIATION);
  });

  it('receive() tells whether a handshake message was an initiation we answered', () => {
    const net = new Net(['a', 'b']);
    net.node('a').m.connect(net.pub('b'));
    const init = net.wire.shift()!;
    expect(net.node('b').m.receive(init.packet, 'x')).toMatchObject({ kind: 'handshake', answered: true });
    const resp = net.wire.shift()!;
    expect(net.node('a').m.receive(resp.packet, 'y')).toMatchObject({ kind: 'handshake', answered: false });
    expect(TRANSPORT_OVERHEAD_LEN).toBe(W.TRANSPORT_HEADER_LEN + W.AEAD_TAG_LEN);
  });
});

describe('SessionManager rejects forged, damaged and replayed input without throwing', () => {
  it('bit flips and truncations of every message type are dropped; the session survives', () => {
    const net = new Net(['a', 'b']);
    net.send('a', 'b', text('x'));
    const init = net.wire[0]!.packet;
    // a damaged initiation: a flipped bit in the bytes mac1 covers breaks mac1 (no DH done);
    // mac2 (the last 16 bytes) only counts under load (test/session/handshake-dos.test.ts)
    fc.assert(fc.property(fc.integer({ min: 0, max: (W.INITIATION_LEN - W.MAC_LEN) * 8 - 1 }), (bit) => {
      const bad = new Uint8Array(init);
      bad[bit >> 3]! ^= 1 << (bit & 7);
      const r = net.node('b').m.receive(bad, 'x');
      expect(r.kind).toBe('dropped');
    }), { numRuns: 200 });
    expect(net.node('b').m.drops.get('handshake_failed') ?? 0).toBe(0); // every failure was caught by mac1 or framing
    net.flush();
    const trafficFromA: Uint8Array[] = [];
    for (let i = 0; i < 5; i++) {
      net.send('a', 'b', text(`m${i}`));
      trafficFromA.push(net.wire.at(-1)!.packet);
    }
    net.flush();
    const delivered = net.node('b').delivered.length;
    fc.assert(fc.property(fc.nat(4), fc.nat(), fc.nat(), (which, pos, cut) => {
      const p = trafficFromA[which]!;
      const flipped = new Uint8Array(p);
      const bit = pos % (p.length * 8);
      flipped[bit >> 3]! ^= 1 << (bit & 7);
      expect(net.node('b').m.receive(flipped, 'x').kind).toBe('dropped');
      expect(net.node('b').m.receive(p.subarray(0, cut % p.length), 'x').kind).toBe('dropped');
    }), { numRuns: 300 });
    expect(net.node('b').delivered.length).toBe(delivered);
    net.send('a', 'b', text('still fine'));
    net.flush();
    expect(str(net.node('b').delivered.at(-1)!.data)).toBe('still fine');
  });

  it('a replayed transport packet is dropped; in-window reordering is accepted exactly once; too old is dropped', () => {
    const net = new Net(['a', 'b']);
    established(net);
    const packets: Uint8Array[] = [];
    for (let i = 0; i < 200; i++) {
      net.send('a', 'b', text(`p${i}`));
      packets.push(net.wire.pop()!.packet);
    }
    const order = [...packets.keys()].reverse(); // worst in-window reordering
    for (const i of order) expect(net.node('b').m.receive(packets[i]!, 'x').kind).toBe('data');
    for (const i of order) expect(net.node('b').m.receive(packets[i]!, 'x')).toMatchObject({ kind: 'dropped', reason: 'replayed' });
    expect(net.node('b').delivered.length).toBe(1 + 200);
    // a packet older than the window (4064 behind the newest) is refused even if never seen
    net.send('a', 'b', text('old'));
    const old = net.wire.pop()!.packet;
    for (let i = 0; i < 4100; i++) net.send('a', 'b', text('n'));
    net.flush();
    expect(net.node('b').m.receive(old, 'x')).toMatchObject({ kind: 'dropped', reason: 'too_old' });
  });

  it('a replayed initiation is refused by its timestamp; a flood within 20 ms is refused', () => {
    const net = new Net(['a', 'b']);
    net.send('a', 'b', text('x'));
    const init = new Uint8Array(net.wire[0]!.packet);
    net.flush();
    net.clock.advance(1000);
    // an exact copy of an accepted initiation is dropped before any DH (the timestamp check
    // behind it is tested in test/session/handshake-dos.test.ts)
    expect(net.node('b').m.receive(init, 'x')).toMatchObject({ kind: 'dropped', reason: 'duplicate_initiation' });
    // two fresh initiations 5 ms apart: the second is refused
    const c = new Net(['a', 'b']);
    c.node('a').m.connect(c.pub('b'));
    const first = c.wire.shift()!.packet;
    c.clock.advance(25);
    c.node('a').m.tick();
    c.clock.advance(1000);
    c.node('a').m.tick(); // retry: a fresh initiation with a newer timestamp
    const second = c.wire.shift()!.packet;
    expect(c.node('b').m.receive(first, 'x').kind).toBe('handshake');
    c.clock.advance(5);
    expect(c.node('b').m.receive(second, 'x')).toMatchObject({ kind: 'dropped', reason: 'initiation_flood' });
  });

  it('sends at most one initiation per peer per 20 ms', () => {
    const net = new Net(['a', 'b']);
    const a = net.node('a').m;
    a.connect(net.pub('b'));
    // drop the initiation; a retry is due after 1 s; a forced connect() 5 ms after the
    // first one must not produce a second initiation
    net.wire.length = 0;
    net.clock.advance(5);
    a.connect(net.pub('b'));
    expect(net.wire.length).toBe(0);
  });

  it('an initiation that found no route is not spaced: the connect() of the first registration sends one at once', () => {
    const net = new Net(['a', 'b']);
    const a = net.node('a').m;
    net.unrouted.add('a'); // the agent has no relay registered yet: the initiation goes nowhere
    expect(net.send('a', 'b', text('first'))).toBe(false);
    expect(net.wire.length).toBe(0);
    expect(a.counters.initiationsSent).toBe(0);
    // 1 ms later the relay registration completes and the agent restarts the handshake
    net.clock.advance(1);
    net.unrouted.delete('a');
    a.connect(net.pub('b'), true);
    expect(net.wire.map((f) => f.packet[0])).toEqual([W.MSG_INITIATION]);
    expect(a.counters.initiationsSent).toBe(1);
    // the spacing still holds for initiations on the wire
    a.connect(net.pub('b'), true);
    expect(net.wire.length).toBe(1);
    // no timer ran: the handshake and the queued packet complete within the same millisecond
    net.flush();
    expect(net.node('b').delivered.map((d) => str(d.data))).toEqual(['first']);
  });

  it('cookie replies for no pending initiation and garbage are counted and dropped', () => {
    const net = new Net(['a', 'b']);
    const b = net.node('b').m;
    expect(b.receive(new Uint8Array(W.COOKIE_REPLY_LEN).fill(0).map((_, i) => (i === 0 ? W.MSG_COOKIE_REPLY : 0)), 'x')).toMatchObject({ reason: 'unknown_index' });
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (junk) => {
      expect(b.receive(junk, 'x').kind).toBe('dropped');
    }), { numRuns: 500 });
  });
});

describe('SessionManager simultaneous initiation', () => {
  it('both sides initiate at once and end on one session that carries traffic both ways', () => {
    fc.assert(fc.property(fc.boolean(), (aFirst) => {
      const net = new Net(['a', 'b']);
      net.send('a', 'b', text('from a'));
      net.send('b', 'a', text('from b'));
      expect(net.wire.map((f) => f.packet[0])).toEqual([W.MSG_INITIATION, W.MSG_INITIATION]);
      if (!aFirst) net.wire.reverse();
      net.flush();
      net.run(3000);
      expect(net.node('b').delivered.map((d) => str(d.data))).toEqual(['from a']);
      expect(net.node('a').delivered.map((d) => str(d.data))).toEqual(['from b']);
      const total = net.node('a').m.counters.handshakesCompleted + net.node('b').m.counters.handshakesCompleted;
      expect(total).toBe(2); // one handshake, completed once on each side
      const lost = (net.node('a').m.drops.get('simultaneous_initiation_lost') ?? 0) + (net.node('b').m.drops.get('simultaneous_initiation_lost') ?? 0);
      expect(lost).toBe(1);
      // no further handshakes once settled
      const sent = net.node('a').m.counters.initiationsSent + net.node('b').m.counters.initiationsSent;
      net.send('a', 'b', text('again'));
      net.send('b', 'a', text('again'));
      net.run(2000);
      expect(net.node('a').m.counters.initiationsSent + net.node('b').m.counters.initiationsSent).toBe(sent);
    }), { numRuns: 10 });
  });
});

describe('SessionManager: a lost initiation of the winning side', () => {
  it('when the peer initiates meanwhile, the winner answers with a fresh initiation at once, not after the retry timer', () => {
    for (let attempt = 0; attempt < 2; attempt++) {
      const net = new Net(['a', 'b']);
      const winner = net.pub('a').compare(net.pub('b')) < 0 ? 'a' : 'b';
      const loser = winner === 'a' ? 'b' : 'a';
      net.send(winner, loser, text('w'));
      net.wire.length = 0; // the winner's initiation is lost (peer not at the relay yet)
      net.clock.advance(100);
      net.send(loser, winner, text('l'));
      net.flush(); // loser's initiation → refused, winner re-initiates → loser answers → done
      expect(net.node(winner).m.drops.get('simultaneous_initiation_lost')).toBe(1);
      expect(net.node(loser).delivered.map((d) => str(d.data))).toEqual(['w']);
      expect(net.node(winner).delivered.map((d) => str(d.data))).toEqual(['l']);
      expect(net.clock.now).toBe(1100); // no timer had to fire
    }
  });
});

describe('SessionManager timers: retries, rekey, expiry, key zeroing', () => {
  it('retries a lost initiation after 1 s, backs off to 5 s, and gives up after 90 s', () => {
    const net = new Net(['a', 'b']);
    net.send('a', 'b', text('x'));
    net.wire.length = 0; // the first initiation (t = 1000) is lost, and so is every retry
    const sentTimes: number[] = [];
    for (let t = 0; t < 100_000; t += 50) {
      net.clock.advance(50);
      net.node('a').m.tick();
      while (net.wire.length) { net.wire.shift(); sentTimes.push(net.clock.now); }
    }
    const gaps = [sentTimes[0]! - 1000, ...sentTimes.slice(1).map((t, i) => t - sentTimes[i]!)];
    expect(gaps.slice(0, 5)).toEqual([1000, 2000, 4000, 5000, 5000]);
    expect(Math.max(...gaps)).toBe(5000);
    expect(net.node('a').events).toContainEqual(expect.objectContaining({ type: 'handshakeTimeout', droppedPackets: 1 }));
    expect(net.node('a').m.info(net.pub('b')).lastError).toMatch(/no handshake response/);
    expect(sentTimes.at(-1)! - 1000).toBeLessThanOrEqual(C.REKEY_ATTEMPT_MS + C.HANDSHAKE_RETRY_MAX_MS);
  });

  it('rekeys after 120 s under continuous traffic with no loss, and rejects the old keys after 180 s', () => {
    const net = new Net(['a', 'b']);
    established(net);
    const sentAB: string[] = ['hello'];
    const sentBA: string[] = [];
    let oldSessionPacket: Uint8Array | undefined;
    for (let t = 0; t < 400_000; t += 500) {
      net.clock.advance(500);
      for (const n of net.nodes.values()) n.m.tick();
      sentAB.push(`ab${t}`);
      sentBA.push(`ba${t}`);
      net.send('a', 'b', text(`ab${t}`));
      net.send('b', 'a', text(`ba${t}`));
      if (t === 1000) oldSessionPacket = new Uint8Array(net.wire.find((f) => f.from === 'a' && f.packet[0] === W.MSG_TRANSPORT)!.packet);
      net.flush();
    }
    expect(net.node('b').delivered.map((d) => str(d.data))).toEqual(sentAB);
    expect(net.node('a').delivered.map((d) => str(d.data))).toEqual(sentBA);
    // 400 s of traffic: initial handshake + at least 3 rekeys (every ~120 s)
    const hs = net.node('a').m.counters.handshakesCompleted;
    expect(hs).toBeGreaterThanOrEqual(4);
    expect(hs).toBeLessThanOrEqual(5);
    const r = net.node('b').m.receive(oldSessionPacket!, 'x');
    expect(r.kind).toBe('dropped');
    expect(['unknown_index', 'expired_session']).toContain((r as { reason: string }).reason);
  });

  it('rekeys after 2^60 messages', () => {
    const net = new Net(['a', 'b']);
    established(net);
    const keys = (net.node('a').m as unknown as { peers: Map<string, { current: { setSendCounterForTest(n: number): void } }> }).peers.values().next().value!.current;
    keys.setSendCounterForTest(C.REKEY_AFTER_MESSAGES);
    net.clock.advance(C.MIN_INITIATION_INTERVAL_MS);
    const before = net.node('a').m.counters.initiationsSent;
    net.send('a', 'b', text('one more'));
    expect(net.node('a').m.counters.initiationsSent).toBe(before + 1);
    net.flush();
    expect(str(net.node('b').delivered.at(-1)!.data)).toBe('one more');
    expect(net.node('a').m.counters.handshakesCompleted).toBe(2);
  });

  it('never sends with keys older than 180 s: queues and handshakes instead', () => {
    const net = new Net(['a', 'b']);
    established(net);
    net.wire.length = 0;
    net.clock.advance(C.REJECT_AFTER_MS + 1);
    const sentBefore = net.node('a').m.counters.sent;
    expect(net.send('a', 'b', text('late'))).toBe(false);
    expect(net.node('a').m.counters.sent).toBe(sentBefore);
    expect(net.wire.map((f) => f.packet[0])).toEqual([W.MSG_INITIATION]);
    net.flush();
    expect(str(net.node('b').delivered.at(-1)!.data)).toBe('late');
  });

  it('zeroes the keys of dropped sessions and on close()', () => {
    const net = new Net(['a', 'b']);
    established(net);
    type Slots = { current?: { sendKey: { key?: Uint8Array }; isDestroyed: boolean } };
    const peerState = (net.node('a').m as unknown as { peers: Map<string, Slots> }).peers.values().next().value!;
    const session = peerState.current!;
    const keyBytes = session.sendKey.key!;
    expect(keyBytes.some((x) => x !== 0)).toBe(true);
    net.clock.advance(C.REJECT_AFTER_MS);
    net.node('a').m.tick();
    expect(session.isDestroyed).toBe(true);
    expect(keyBytes.every((x) => x === 0)).toBe(true);
    const net2 = new Net(['a', 'b']);
    established(net2);
    const s2 = (net2.node('b').m as unknown as { peers: Map<string, Slots> }).peers.values().next().value!.current!;
    const k2 = s2.sendKey.key!;
    net2.node('b').m.close();
    expect(k2.every((x) => x === 0)).toBe(true);
  });
});

describe('SessionManager under random loss, duplication and reordering', () => {
  it('delivers only authentic payloads, each at most once, and everything once the network heals', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 2 ** 31 }), (seed) => {
      let s = seed;
      const rnd = (): number => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
      const net = new Net(['a', 'b', 'c']);
      const sent = new Map<string, number>();
      for (let step = 0; step < 300; step++) {
        const [from, to] = [['a', 'b'], ['b', 'a'], ['a', 'c'], ['c', 'b']][Math.floor(rnd() * 4)]!;
        const msg = `${from}>${to}#${step}`;
        sent.set(msg, 0);
        net.send(from!, to!, text(msg));
        // impair: drop 10 %, duplicate 10 %, shuffle the wire
        for (let i = net.wire.length - 1; i >= 0; i--) {
          const r = rnd();
          if (r < 0.1) net.wire.splice(i, 1);
          else if (r < 0.2) net.wire.push({ ...net.wire[i]! });
        }
        for (let i = net.wire.length - 1; i > 0; i--) {
          const j = Math.floor(rnd() * (i + 1));
          [net.wire[i], net.wire[j]] = [net.wire[j]!, net.wire[i]!];
        }
        net.flush(Math.floor(rnd() * 4));
        net.clock.advance(Math.floor(rnd() * 300));
        for (const n of net.nodes.values()) n.m.tick();
      }
      for (const n of net.nodes.values()) for (const d of n.delivered) {
        const key = str(d.data);
        expect(sent.has(key)).toBe(true);
        expect(key.startsWith(`${d.from}>${n.name}#`)).toBe(true);
        sent.set(key, sent.get(key)! + 1);
      }
      for (const count of sent.values()) expect(count).toBeLessThanOrEqual(1);
      // heal: after the network is clean, new messages always get through
      net.run(6000);
      for (const [from, to] of [['a', 'b'], ['b', 'a'], ['a', 'c'], ['c', 'a'], ['b', 'c'], ['c', 'b']]) {
        net.send(from!, to!, text(`final ${from}${to}`));
      }
      net.run(12_000);
      for (const [from, to] of [['a', 'b'], ['b', 'a'], ['a', 'c'], ['c', 'a'], ['b', 'c'], ['c', 'b']]) {
        expect(net.node(to!).delivered.map((d) => str(d.data))).toContain(`final ${from}${to}`);
      }
    }), { numRuns: 25 });
  });
});
