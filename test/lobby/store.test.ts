// The relay's lobby store (sans-I/O, explicit clock): seats, immutability, expiry, caps.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { LobbyStore, maxLobbyBytes, type LobbyLimits } from '../../src/lobby/store.js';
import { sourceKey } from '../../src/lobby/http.js';
import { ENTRY_BOX_LEN, OP_CONFIRM, OP_CREATE, OP_ENTRY, OP_READ, STATUS, confirmBoxLen, decodeRequest, type Request, type Response } from '../../src/lobby/wire.js';

const limits: LobbyLimits = { maxLobbies: 5, perSource: 2, maxParties: 8, ttlS: 60 };
const id = (n: number): Uint8Array => new Uint8Array(16).fill(n);
const tag = (n: number): Uint8Array => new Uint8Array(16).fill(100 + n);
const verifier = new Uint8Array(16).fill(42);
const create = (n: number, capacity = 3, ttlS = 0): Request => ({ op: OP_CREATE, lobbyId: id(n), capacity, ttlS, verifier });
const entry = (n: number, t: number, fill = t): Request => ({ op: OP_ENTRY, lobbyId: id(n), record: { tag: tag(t), box: new Uint8Array(ENTRY_BOX_LEN).fill(fill) } });
const confirm = (n: number, t: number, capacity = 3): Request => ({ op: OP_CONFIRM, lobbyId: id(n), record: { tag: tag(t), box: new Uint8Array(confirmBoxLen(capacity)).fill(t) } });
const read = (n: number, fromEntry = 0, fromConfirm = 0): Request => ({ op: OP_READ, lobbyId: id(n), fromEntry, fromConfirm });
const view = (r: Response) => { if (r.status !== STATUS.OK && r.status !== STATUS.CREATED) throw new Error(`status ${r.status}`); return r.view; };

describe('lobby store', () => {
  it('seats members in arrival order, hands out only what is new, and keeps records immutable per seat', () => {
    const s = new LobbyStore(limits);
    expect(s.handle(create(1), 'a', 0).status).toBe(STATUS.CREATED);
    expect(s.handle(create(1), 'a', 0).status).toBe(STATUS.OK); // the creator retrying
    expect(s.handle({ ...create(1), verifier: new Uint8Array(16) } as Request, 'a', 0).status).toBe(STATUS.CONFLICT);
    for (const t of [2, 0, 1]) expect(s.handle(entry(1, t), 'x', 10).status).toBe(STATUS.OK);
    expect(s.handle(entry(1, 0), 'x', 10).status).toBe(STATUS.OK); // the same post again: idempotent
    expect(s.handle(entry(1, 0, 99), 'x', 10).status).toBe(STATUS.CONFLICT); // other bytes for a taken seat
    expect(s.handle(entry(1, 3), 'x', 10).status).toBe(STATUS.FULL);
    const v = view(s.handle(read(1), 'x', 10));
    expect(v.entries.map((e) => e.tag[0])).toEqual([102, 100, 101]);
    expect(v.entries[1]!.box[0]).toBe(0); // the first post, not the conflicting one
    expect(view(s.handle(read(1, 2), 'x', 10)).entries.map((e) => e.tag[0])).toEqual([101]);
    expect(view(s.handle(read(1, 9), 'x', 10)).entries).toEqual([]);
    expect(s.handle(confirm(1, 3), 'x', 10).status).toBe(STATUS.NOT_MEMBER);
    expect(s.handle(confirm(1, 0), 'x', 10).status).toBe(STATUS.OK);
    expect(s.handle(confirm(1, 0, 4), 'x', 10).status).toBe(STATUS.BAD_REQUEST); // size of another capacity
    expect(s.handle({ ...entry(1, 5), record: { tag: tag(5), box: new Uint8Array(ENTRY_BOX_LEN - 1) } } as Request, 'x', 10).status).toBe(STATUS.BAD_REQUEST);
    const after = view(s.handle(read(1, 3, 0), 'x', 10));
    expect([after.entriesHeld, after.confirmsHeld, after.entries.length, after.confirms.length]).toEqual([3, 1, 0, 1]);
    expect(after.verifier).toEqual(verifier);
    expect(s.handle(read(9), 'x', 10).status).toBe(STATUS.NOT_FOUND);
    expect(s.openLobbies).toBe(1);
    expect(s.members).toBe(3);
  });

  it('expires a lobby at its ttl (default and maximum: the relay\'s), says EXPIRED for as long again, then NOT_FOUND', () => {
    const s = new LobbyStore(limits);
    s.handle(create(1), 'a', 0);
    s.handle(create(2, 3, 10), 'a', 0);
    expect(view(s.handle(read(1), 'x', 0)).secondsLeft).toBe(60);
    expect(view(s.handle(read(2), 'x', 0)).secondsLeft).toBe(10);
    expect(s.handle(create(3, 3, 10_000), 'b', 0).status).toBe(STATUS.CREATED);
    expect(view(s.handle(read(3), 'x', 0)).secondsLeft).toBe(60); // cut to the relay's maximum
    expect(s.handle(read(2), 'x', 10_000).status).toBe(STATUS.EXPIRED);
    expect(s.handle(entry(2, 0), 'x', 10_000).status).toBe(STATUS.EXPIRED);
    expect(s.handle(create(2), 'a', 10_001).status).toBe(STATUS.EXPIRED); // an old id is not reopened
    expect(s.handle(read(1), 'x', 59_999).status).toBe(STATUS.OK);
    s.sweep(60_000);
    expect(s.openLobbies).toBe(0);
    expect(s.counts).toEqual({ created: 3, expired: 3 });
    expect(s.handle(read(1), 'x', 60_000).status).toBe(STATUS.EXPIRED);
    s.sweep(120_001);
    expect(s.handle(read(1), 'x', 120_001).status).toBe(STATUS.NOT_FOUND);
  });

  it('caps lobbies per source and in total; an expired lobby frees its creator\'s slot', () => {
    const s = new LobbyStore(limits);
    expect(s.handle(create(1), 'a', 0).status).toBe(STATUS.CREATED);
    expect(s.handle(create(2), 'a', 0).status).toBe(STATUS.CREATED);
    expect(s.handle(create(3), 'a', 0).status).toBe(STATUS.SOURCE_LIMIT);
    for (const n of [3, 4, 5]) expect(s.handle(create(n), `s${n}`, 0).status).toBe(STATUS.CREATED);
    expect(s.handle(create(6), 'z', 0).status).toBe(STATUS.RELAY_LIMIT);
    expect(s.handle(create(7, 9), 'z', 0).status).toBe(STATUS.TOO_LARGE); // over the party limit
    expect(s.handle(create(7, 1), 'z', 0).status).toBe(STATUS.BAD_REQUEST);
    s.sweep(60_000);
    expect(s.handle(create(8), 'a', 60_000).status).toBe(STATUS.CREATED);
  });

  it('tombstones stay bounded however many lobbies expire', () => {
    const s = new LobbyStore({ ...limits, perSource: 1000, maxLobbies: 3 });
    for (let n = 0; n < 200; n++) {
      s.handle({ ...create(0), lobbyId: Uint8Array.from({ length: 16 }, (_, i) => (i < 2 ? n >> (8 * i) : 1)) } as Request, 'a', n * 61_000);
      s.sweep(n * 61_000 + 60_000);
    }
    expect((s as unknown as { gone: Map<string, number> }).gone.size).toBeLessThanOrEqual(12);
  });

  it('survives any sequence of random requests (fuzzed through the wire decoder)', () => {
    fc.assert(fc.property(fc.array(fc.tuple(fc.uint8Array({ maxLength: 400 }), fc.nat(200_000)), { maxLength: 60 }), (reqs) => {
      const s = new LobbyStore(limits);
      for (const [raw, now] of reqs) {
        const b = Buffer.concat([Uint8Array.of(1, (raw[0] ?? 0) % 5), id((raw[1] ?? 0) % 3), raw.subarray(2)]);
        const r = decodeRequest(b);
        if (r) s.handle(r, 'f', now);
        s.sweep(now);
      }
      expect(s.openLobbies).toBeLessThanOrEqual(limits.maxLobbies);
    }), { seed: 7, numRuns: 300 });
  });

  it('states its memory bound: 256 lobbies of 64 members in about 22 MB', () => {
    expect(256 * maxLobbyBytes(64)).toBeLessThan(23e6);
  });

  it('counts IPv6 clients by /64 and IPv4-mapped clients as IPv4', () => {
    expect(sourceKey('2001:db8:1:2:aaaa::1')).toBe(sourceKey('2001:db8:1:2:bbbb:cccc:dddd:eeee'));
    expect(sourceKey('2001:db8:1:2::1')).not.toBe(sourceKey('2001:db8:1:3::1'));
    expect(sourceKey('::ffff:192.0.2.1')).toBe('192.0.2.1');
    expect(sourceKey('::1')).toBe('0:0:0:0::/64');
    expect(sourceKey('192.0.2.9')).toBe('192.0.2.9');
  });
});
