import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { PeerKey, isKeyText, keyIdAt } from '../../src/common/peer-key.js';

describe('PeerKey', () => {
  it('text, bytes and id are three views of the same 32 bytes (round trip, any key)', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (raw) => {
      const k = PeerKey.fromBytes(raw);
      expect(k.text).toHaveLength(44);
      expect(Buffer.from(k.text, 'base64').equals(Buffer.from(raw))).toBe(true);
      expect(PeerKey.fromText(k.text).equals(k)).toBe(true);
      expect(PeerKey.fromId(k.id).text).toBe(k.text);
      const frame = Buffer.concat([Buffer.from([0x25]), Buffer.from(raw), Buffer.from('payload')]);
      expect(keyIdAt(frame, 1)).toBe(k.id);
    }), { seed: 11, numRuns: 200 });
  });

  it('copies its input: changing the caller\'s buffer changes nothing', () => {
    const raw = new Uint8Array(32).fill(7);
    const k = PeerKey.fromBytes(raw);
    raw.fill(0);
    expect(k.bytes.every((b) => b === 7)).toBe(true);
  });

  it('compare is bytewise order and equals compares the key, not the object', () => {
    const a = PeerKey.fromBytes(new Uint8Array(32).fill(1));
    const b = PeerKey.fromBytes(Uint8Array.from({ length: 32 }, (_, i) => (i === 31 ? 2 : 1)));
    expect(a.compare(b)).toBeLessThan(0);
    expect(b.compare(a)).toBeGreaterThan(0);
    expect(a.equals(PeerKey.fromText(a.text))).toBe(true);
    expect(a.equals(b)).toBe(false);
    expect(JSON.stringify({ k: a })).toBe(`{"k":"${a.text}"}`);
  });

  it('rejects malformed text with a message that says what is wrong', () => {
    expect(() => PeerKey.fromText('abc', 'party 2 key')).toThrow(/party 2 key: a key is 44 base64 characters, got 3/);
    expect(() => PeerKey.fromText('!'.repeat(43) + '=', 'relay key')).toThrow(/relay key: not base64/);
    expect(() => PeerKey.fromBytes(new Uint8Array(31))).toThrow(/32 bytes, got 31/);
    expect(isKeyText('A'.repeat(43) + '=')).toBe(true);
    expect(isKeyText('A'.repeat(44))).toBe(false);
  });
});
