// The forwarding path's two lookups (src/relay/agent-index.ts): by the key bytes inside a
// frame, and by a datagram's port and address, including the shared buckets (keys whose
// first bytes agree, one port at several addresses) that an attacker can make.
import { describe, it, expect } from 'vitest';
import { KeyBytesIndex, UdpIndex } from '../../src/relay/agent-index.js';

const keyed = (bytes: number[]): { key: { bytes: Uint8Array } } => {
  const b = new Uint8Array(32);
  b.set(bytes);
  return { key: { bytes: b } };
};
/** the key's 32 bytes at offset 9 of a frame, as in a SEND */
const frameWith = (k: { key: { bytes: Uint8Array } }): Uint8Array => { const f = new Uint8Array(41 + 10); f.set(k.key.bytes, 9); return f; };

describe('KeyBytesIndex', () => {
  it('finds an entry by the key bytes inside a frame, and only by all 32 of them', () => {
    const ix = new KeyBytesIndex<ReturnType<typeof keyed>>();
    const a = keyed([1, 2, 3, 4, 5]);
    ix.add(a);
    expect(ix.get(frameWith(a), 9)).toBe(a);
    // same first 4 bytes (same bucket), another byte differs: not found
    expect(ix.get(frameWith(keyed([1, 2, 3, 4, 6])), 9)).toBeUndefined();
    const last = keyed([1, 2, 3, 4, 5]); last.key.bytes[31] = 1;
    expect(ix.get(frameWith(last), 9)).toBeUndefined();
    ix.delete(a);
    expect(ix.get(frameWith(a), 9)).toBeUndefined();
  });

  it('keeps keys that share a bucket apart (the top two bits of byte 3 are not in the bucket)', () => {
    const ix = new KeyBytesIndex<ReturnType<typeof keyed>>();
    const ks = [keyed([9, 9, 9, 0x01, 1]), keyed([9, 9, 9, 0x41, 2]), keyed([9, 9, 9, 0x81, 3]), keyed([9, 9, 9, 0xc1, 4])];
    for (const k of ks) ix.add(k);
    for (const k of ks) expect(ix.get(frameWith(k), 9)).toBe(k);
    ix.delete(ks[1]!);
    expect(ix.get(frameWith(ks[1]!), 9)).toBeUndefined();
    for (const k of [ks[0]!, ks[2]!, ks[3]!]) expect(ix.get(frameWith(k), 9)).toBe(k);
    ix.delete(ks[0]!); ix.delete(ks[3]!);
    expect(ix.get(frameWith(ks[2]!), 9)).toBe(ks[2]);
    ix.delete(ks[2]!);
    for (const k of ks) expect(ix.get(frameWith(k), 9)).toBeUndefined();
    // deleting what is not there changes nothing
    const other = keyed([9, 9, 9, 0x01, 7]);
    ix.add(ks[0]!);
    ix.delete(other);
    expect(ix.get(frameWith(ks[0]!), 9)).toBe(ks[0]);
  });
});

describe('UdpIndex', () => {
  it('finds by port and address; one port at several addresses; deletes only what it holds', () => {
    const ix = new UdpIndex<{ address: string; port: number; n: number }>();
    const a = { address: '10.0.0.1', port: 5000, n: 1 }, b = { address: '10.0.0.2', port: 5000, n: 2 }, c = { address: '10.0.0.1', port: 5001, n: 3 };
    ix.add(a);
    // a fresh string with the same text, as Node hands every datagram
    expect(ix.get(['10.0.0', '1'].join('.'), 5000)).toBe(a);
    expect(ix.get('10.0.0.2', 5000)).toBeUndefined();
    ix.add(b); ix.add(c);
    expect(ix.get('10.0.0.1', 5000)).toBe(a);
    expect(ix.get('10.0.0.2', 5000)).toBe(b);
    expect(ix.get('10.0.0.1', 5001)).toBe(c);
    // a stale entry of the same place is not the one held: nothing removed
    expect(ix.delete({ address: '10.0.0.1', port: 5000, n: 9 })).toBe(false);
    expect(ix.get('10.0.0.1', 5000)).toBe(a);
    expect(ix.delete(a)).toBe(true);
    expect(ix.get('10.0.0.1', 5000)).toBeUndefined();
    expect(ix.get('10.0.0.2', 5000)).toBe(b);
    expect(ix.delete(b)).toBe(true);
    expect(ix.delete(b)).toBe(false);
    expect(ix.get('10.0.0.2', 5000)).toBeUndefined();
    expect(ix.get('10.0.0.1', 5001)).toBe(c);
  });
});
