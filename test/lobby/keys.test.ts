// The key schedule and the roster rule: boxes open only with this lobby's secret, relay
// key, kind and seat; key proofs need a private key; the roster ignores arrival order.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { KIND_CONFIRM, KIND_ENTRY, LobbyKeys, keyProof } from '../../src/lobby/keys.js';
import { buildRoster, orderMembers, uniqueNames, type Member } from '../../src/lobby/roster.js';
import { PeerKey } from '../../src/common/peer-key.js';
import { generateKeyPair } from '../../src/noise/index.js';
import { parseSessionFile } from '../../src/agent/session-file.js';

const seed = 424242;
const relayKey = PeerKey.fromBytes(generateKeyPair().publicKey);
const otherRelay = PeerKey.fromBytes(generateKeyPair().publicKey);
const lobbyId = new Uint8Array(16).fill(1);
const secret = new Uint8Array(16).fill(2);

describe('lobby keys', () => {
  it('a box opens only with the same secret, relay key, lobby id, kind and seat, and not after any bit flip', () => {
    const k = new LobbyKeys(relayKey, lobbyId, secret);
    const tag = k.tag(new Uint8Array(32).fill(5));
    const box = k.seal(KIND_ENTRY, tag, Buffer.from('hello'));
    expect(Buffer.from(k.open(KIND_ENTRY, tag, box)!).toString()).toBe('hello');
    const other = (s: Uint8Array, r = relayKey, id = lobbyId): LobbyKeys => new LobbyKeys(r, id, s);
    expect(other(Uint8Array.from(secret, (x, i) => (i === 15 ? x ^ 0x80 : x))).open(KIND_ENTRY, tag, box)).toBeNull();
    expect(other(secret, otherRelay).open(KIND_ENTRY, tag, box)).toBeNull();
    expect(other(secret, relayKey, new Uint8Array(16).fill(9)).open(KIND_ENTRY, tag, box)).toBeNull();
    expect(k.open(KIND_CONFIRM, tag, box)).toBeNull();
    expect(k.open(KIND_ENTRY, k.tag(new Uint8Array(32).fill(6)), box)).toBeNull();
    fc.assert(fc.property(fc.integer({ min: 0, max: box.length * 8 - 1 }), (bit) => {
      const bad = new Uint8Array(box);
      bad[bit >> 3]! ^= 1 << (bit & 7);
      expect(k.open(KIND_ENTRY, tag, bad)).toBeNull();
    }), { seed, numRuns: 300 });
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (junk) => { expect(k.open(KIND_ENTRY, tag, junk)).toBeNull(); }), { seed, numRuns: 500 });
  });

  it('two seals of the same plaintext differ (a fresh key per message); the seat tag is stable per lobby only', () => {
    const k = new LobbyKeys(relayKey, lobbyId, secret);
    const pub = new Uint8Array(32).fill(3);
    expect(Buffer.from(k.seal(KIND_ENTRY, k.tag(pub), pub)).equals(k.seal(KIND_ENTRY, k.tag(pub), pub))).toBe(false);
    expect(new LobbyKeys(relayKey, lobbyId, secret).tag(pub)).toEqual(k.tag(pub));
    expect(new LobbyKeys(relayKey, new Uint8Array(16), secret).tag(pub)).not.toEqual(k.tag(pub));
    expect(new LobbyKeys(relayKey, lobbyId, secret).verifier).toEqual(k.verifier);
    expect(new LobbyKeys(relayKey, lobbyId, new Uint8Array(16)).verifier).not.toEqual(k.verifier);
  });

  it('wipe() zeroes the secret-derived keys: nothing opens afterwards', () => {
    const k = new LobbyKeys(relayKey, lobbyId, secret);
    const tag = new Uint8Array(16);
    const box = k.seal(KIND_ENTRY, tag, Uint8Array.of(1));
    k.wipe();
    expect(k.open(KIND_ENTRY, tag, box)).toBeNull();
  });

  it('a key proof is made by either holder of the pair and binds direction and file hash', () => {
    const k = new LobbyKeys(relayKey, lobbyId, secret);
    const [a, b, m] = [generateKeyPair(), generateKeyPair(), generateKeyPair()];
    const hash = new Uint8Array(32).fill(7);
    const ab = k.pairKey(a.privateKey, b.publicKey);
    expect(k.pairKey(b.privateKey, a.publicKey)).toEqual(ab);
    const proof = keyProof(ab, hash, a.publicKey, b.publicKey);
    expect(keyProof(k.pairKey(b.privateKey, a.publicKey), hash, a.publicKey, b.publicKey)).toEqual(proof);
    expect(keyProof(ab, hash, b.publicKey, a.publicKey)).not.toEqual(proof);
    expect(keyProof(ab, new Uint8Array(32), a.publicKey, b.publicKey)).not.toEqual(proof);
    // someone without a's or b's private key gets another pair key
    expect(keyProof(k.pairKey(m.privateKey, b.publicKey), hash, a.publicKey, b.publicKey)).not.toEqual(proof);
    expect(() => k.pairKey(a.privateKey, new Uint8Array(32))).toThrow();
  });
});

const member = (name: string | undefined, joinedAt: number): Member => {
  const key = PeerKey.fromBytes(generateKeyPair().publicKey);
  return { key, publicKey: key.bytes, joinedAt, tag: new Uint8Array(16), ...(name !== undefined ? { name } : {}) };
};
const relay = { publicKey: relayKey.text, host: 'relay.example.org', udpPort: 3478, httpPort: 8080 };

describe('roster rule', () => {
  it('the same members in any arrival order give the same session text', () => {
    const ms = [member('a', 5), member('b', 5), member('c', 1), member(undefined, 9), member('a', 2)];
    const text = buildRoster(ms, relay, 20000).text;
    fc.assert(fc.property(fc.shuffledSubarray(ms, { minLength: ms.length, maxLength: ms.length }), (perm) => {
      expect(buildRoster(perm, relay, 20000).text).toBe(text);
    }), { seed, numRuns: 100 });
    const s = parseSessionFile(text, 't');
    expect(s.basePort).toBe(20000);
    expect(s.parties.map((p) => p.name)).toEqual(['c', 'a', ...orderMembers([ms[0]!, ms[1]!]).map((m) => m.name === 'a' ? 'a (2)' : m.name), undefined]);
  });

  it('orders by sealed join time, then key', () => {
    const [x, y] = [member('x', 7), member('y', 7)];
    const first = x.key.compare(y.key) < 0 ? 'x' : 'y';
    expect(orderMembers([y, x])[0]!.name).toBe(first);
    expect(orderMembers([member('late', 9), member('early', 1)]).map((m) => m.name)).toEqual(['early', 'late']);
  });

  it('names are made unique within 64 characters', () => {
    const long = 'n'.repeat(64);
    expect(uniqueNames(['a', 'a', 'a', undefined, 'b'])).toEqual(['a', 'a (2)', 'a (3)', undefined, 'b']);
    const [, second] = uniqueNames([long, long]);
    expect(second).toHaveLength(64);
    expect(second!.endsWith(' (2)')).toBe(true);
  });

  it('a member using the relay\'s key makes no valid session', () => {
    const bad = { ...member('r', 1), key: relayKey, publicKey: relayKey.bytes };
    expect(() => buildRoster([member('a', 0), bad], relay, 11365)).toThrow(/relays\[0\]/);
  });
});
