// SessionKeys in place: the buffer contract (headroom/tailroom), the wire layout of the
// message it produces (decodable by wire.ts, counter across the 2^32 edge), the copying
// seal(), and the receive checks (replay before decryption, forged
// packets never move the window, counters beyond 2^53 refused).
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { CipherState, MAX_COUNTER } from '../../src/noise/index.js';
import { SESSION_HEADROOM, SESSION_TAILROOM, SessionKeys } from '../../src/session/session-keys.js';
import { TRANSPORT_OVERHEAD_LEN, decodeSessionMessage } from '../../src/session/wire.js';

const k1 = new Uint8Array(32).fill(1);
const k2 = new Uint8Array(32).fill(2);
/** A matched pair: a sends with k1, b receives with k1 (and the reverse with k2). */
function pair(): { a: SessionKeys; b: SessionKeys } {
  return {
    a: new SessionKeys(new CipherState(k1), new CipherState(k2), 11, 22, true, 0),
    b: new SessionKeys(new CipherState(k2), new CipherState(k1), 22, 11, false, 0),
  };
}

/** A plaintext view inside a bigger ArrayBuffer, with `head` bytes before and `tail` after. */
function framed(payload: Uint8Array, head = SESSION_HEADROOM + 8, tail = SESSION_TAILROOM + 8): Uint8Array {
  const ab = new ArrayBuffer(head + payload.length + tail);
  const view = new Uint8Array(ab, head, payload.length);
  view.set(payload);
  return view;
}
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('SessionKeys in place', () => {
  it('documents its buffer contract: 16 bytes before, 16 after', () => {
    expect([SESSION_HEADROOM, SESSION_TAILROOM, TRANSPORT_OVERHEAD_LEN]).toEqual([16, 16, 32]);
  });

  it('seals where the plaintext lies and opens inside the datagram, round-tripping any payload', () => {
    const { a, b } = pair();
    fc.assert(fc.property(fc.uint8Array({ maxLength: 2000 }), (payload) => {
      const pt = framed(payload);
      const msg = a.sealInPlace(pt);
      expect(msg.buffer).toBe(pt.buffer);
      expect(msg.byteOffset).toBe(pt.byteOffset - SESSION_HEADROOM);
      expect(msg.length).toBe(payload.length + TRANSPORT_OVERHEAD_LEN);
      if (payload.length >= 8) expect(hex(pt)).not.toBe(hex(payload)); // encrypted where it lay
      const d = decodeSessionMessage(msg);
      expect(d.type).toBe('transport');
      if (d.type === 'transport') expect(d.msg.receiverIndex).toBe(22);
      const opened = b.openInPlace(msg);
      expect(typeof opened).not.toBe('string');
      const view = opened as Uint8Array;
      expect(view.buffer).toBe(msg.buffer);
      expect(view.byteOffset).toBe(msg.byteOffset + SESSION_HEADROOM);
      expect(hex(view)).toBe(hex(payload));
    }), { numRuns: 150, seed: 0x5e55 });
  });

  it('writes the counter as u64 LE across the 2^32 edge, in place and copying alike', () => {
    const { a, b } = pair();
    a.setSendCounterForTest(2 ** 32 - 2);
    for (let i = 0; i < 4; i++) {
      const plaintext = framed(new Uint8Array([i]));
      const msg = i % 2 ? a.seal(new Uint8Array([i])) : a.sealInPlace(plaintext);
      const d = decodeSessionMessage(msg);
      if (d.type !== 'transport') throw new Error('not a transport message');
      expect(d.msg.counter).toBe(2 ** 32 - 2 + i);
      expect(Buffer.from(msg.subarray(8, 16)).readBigUInt64LE()).toBe(BigInt(2 ** 32 - 2 + i));
      expect(Array.from(b.openInPlace(msg) as Uint8Array)).toEqual([i]);
    }
    expect(a.messagesSent).toBe(2 ** 32 + 2);
  });

  it('seal() copies: the caller keeps its plaintext', () => {
    const { a, b } = pair();
    const pt = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
    const msg = a.seal(pt);
    expect(Array.from(pt)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(msg.buffer).not.toBe(pt.buffer);
    expect(Array.from(b.openInPlace(msg) as Uint8Array)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('refuses a view without the headroom or tailroom it needs', () => {
    const { a } = pair();
    expect(() => a.sealInPlace(framed(new Uint8Array(4), SESSION_HEADROOM - 1))).toThrow(RangeError);
    expect(() => a.sealInPlace(framed(new Uint8Array(4), SESSION_HEADROOM, SESSION_TAILROOM - 1))).toThrow(RangeError);
    expect(() => a.sealInPlace(new Uint8Array(10))).toThrow(RangeError);
    expect(a.messagesSent).toBe(0); // nothing was consumed
    expect(() => a.sealInPlace(framed(new Uint8Array(4), SESSION_HEADROOM, SESSION_TAILROOM))).not.toThrow();
  });

  it('a replayed or too-old message is refused before decryption and left untouched', () => {
    const { a, b } = pair();
    const first = a.seal(new Uint8Array([1, 2, 3]));
    const keep = new Uint8Array(first);
    expect(b.openInPlace(first)).not.toBeTypeOf('string');
    const replay = new Uint8Array(keep);
    expect(b.openInPlace(replay)).toBe('replayed');
    expect(hex(replay)).toBe(hex(keep));
    a.setSendCounterForTest(10_000);
    expect(b.openInPlace(a.seal(new Uint8Array(1)))).not.toBeTypeOf('string');
    a.setSendCounterForTest(1);
    expect(b.openInPlace(a.seal(new Uint8Array(1)))).toBe('too_old');
  });

  it('a forged message fails, never moves the window, and the genuine one with the same counter still opens', () => {
    const { a, b } = pair();
    fc.assert(fc.property(fc.uint8Array({ minLength: 1, maxLength: 300 }), fc.nat(), (payload, flipAt) => {
      const genuine = a.seal(payload);
      const forged = new Uint8Array(genuine);
      const at = SESSION_HEADROOM + (flipAt % (forged.length - SESSION_HEADROOM));
      forged[at]! ^= 0x40;
      expect(b.openInPlace(forged)).toBe('decrypt_failed');
      expect(hex(b.openInPlace(genuine) as Uint8Array)).toBe(hex(payload));
    }), { numRuns: 150, seed: 0xf0e });
  });

  it('counters at or above 2^53 on the wire are out of range; a short message fails; destroyed keys fail', () => {
    const { a, b } = pair();
    const msg = a.seal(new Uint8Array(4));
    const high = new Uint8Array(msg);
    high[14] = 0x20; // counter += 2^53
    expect(b.openInPlace(high)).toBe('out_of_range');
    const huge = new Uint8Array(msg);
    huge.fill(0xff, 8, 16);
    expect(b.openInPlace(huge)).toBe('out_of_range');
    expect(b.openInPlace(msg.subarray(0, TRANSPORT_OVERHEAD_LEN - 1))).toBe('decrypt_failed');
    a.setSendCounterForTest(MAX_COUNTER);
    expect(b.openInPlace(a.seal(new Uint8Array(2)))).not.toBeTypeOf('string');
    expect(() => a.seal(new Uint8Array(2))).toThrow(/exhausted/);
    const late = pair();
    const m = late.a.seal(new Uint8Array(3));
    late.b.destroy();
    expect(late.b.openInPlace(m)).toBe('decrypt_failed');
    late.a.destroy();
    expect(() => late.a.seal(new Uint8Array(1))).toThrow();
  });
});
