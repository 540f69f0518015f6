// Sliding anti-replay window for packet counters, in the style of RFC 6479: a ring of
// 32-bit words, where advancing the window clears whole words instead of shifting bits.
// The caller checks a counter only AFTER the packet authenticated (so a forged packet can
// never move the window) and then calls accept(); check() alone may come first, as a cheap
// filter that changes nothing.
//
// Layout: RING_WORDS words of 32 bits. The word holding counter c is (c >> 5) mod
// RING_WORDS, bit (c & 31). One word is always being recycled, so the guaranteed window is
// (RING_WORDS - 1) * 32 = 4064 packets (the issue asks for at least 2048).
//
// Counters are Numbers, exact below 2^53 (MAX_COUNTER). Bit operators work on 32 bits, so
// the word and bit are taken from c mod RING_BITS (= 4096, a power of two: exact for any
// safe integer), and word distances from Math.floor(c / 32).
import { MAX_COUNTER } from '../noise/index.js';

const WORD_BITS = 32;
const RING_WORDS = 128;
const RING_BITS = RING_WORDS * WORD_BITS;
export const REPLAY_WINDOW_SIZE = (RING_WORDS - 1) * WORD_BITS;

export type ReplayVerdict = 'ok' | 'replayed' | 'too_old' | 'out_of_range';

export class ReplayWindow {
  private readonly ring = new Uint32Array(RING_WORDS);
  /** highest counter accepted so far; -1 before the first */
  private top = -1;

  /** Would this counter be accepted? Does not change state. */
  check(counter: number): ReplayVerdict {
    if (!(counter >= 0 && counter <= MAX_COUNTER) || !Number.isInteger(counter)) return 'out_of_range';
    if (counter > this.top) return 'ok';
    if (this.top - counter >= REPLAY_WINDOW_SIZE) return 'too_old';
    const inRing = counter % RING_BITS;
    return (this.ring[inRing >>> 5]! & (1 << (inRing & 31))) !== 0 ? 'replayed' : 'ok';
  }

  /** Checks and, if acceptable, records the counter. Returns the verdict. */
  accept(counter: number): ReplayVerdict {
    const verdict = this.check(counter);
    if (verdict !== 'ok') return verdict;
    if (counter > this.top) {
      const oldWord = this.top < 0 ? -1 : Math.floor(this.top / WORD_BITS);
      const newWord = Math.floor(counter / WORD_BITS);
      // clear every word the window slides over (at most the whole ring)
      const n = Math.min(newWord - oldWord, RING_WORDS);
      for (let i = 1; i <= n; i++) this.ring[(oldWord + i) % RING_WORDS] = 0;
      this.top = counter;
    }
    const inRing = counter % RING_BITS;
    this.ring[inRing >>> 5] = this.ring[inRing >>> 5]! | (1 << (inRing & 31));
    return 'ok';
  }

  get highest(): number { return this.top; }
}
