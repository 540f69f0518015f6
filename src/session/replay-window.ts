// Sliding anti-replay window for 64-bit packet counters, in the style of RFC 6479: a ring
// of 32-bit words, where advancing the window clears whole words instead of shifting bits.
// The caller checks a counter only AFTER the packet authenticated (so a forged packet can
// never move the window) and then calls accept().
//
// Layout: RING_WORDS words of 32 bits. The word holding counter c is (c >> 5) mod
// RING_WORDS, bit (c & 31). One word is always being recycled, so the guaranteed window is
// (RING_WORDS - 1) * 32 = 4064 packets (the issue asks for at least 2048).

const WORD_BITS = 32n;
const RING_WORDS = 128;
export const REPLAY_WINDOW_SIZE = (RING_WORDS - 1) * 32;
const WINDOW = BigInt(REPLAY_WINDOW_SIZE);
/** Counters at or above this are invalid (Noise reserves 2^64-1). */
export const COUNTER_LIMIT = (1n << 64n) - 1n;

export type ReplayVerdict = 'ok' | 'replayed' | 'too_old' | 'out_of_range';

export class ReplayWindow {
  private readonly ring = new Uint32Array(RING_WORDS);
  /** highest counter accepted so far; -1 before the first */
  private top = -1n;

  /** Would this counter be accepted? Does not change state. */
  check(counter: bigint): ReplayVerdict {
    if (counter < 0n || counter >= COUNTER_LIMIT) return 'out_of_range';
    if (counter > this.top) return 'ok';
    if (this.top - counter >= WINDOW) return 'too_old';
    const word = Number((counter >> 5n) % BigInt(RING_WORDS));
    const bit = 1 << Number(counter & 31n);
    return (this.ring[word]! & bit) !== 0 ? 'replayed' : 'ok';
  }

  /** Checks and, if acceptable, records the counter. Returns the verdict. */
  accept(counter: bigint): ReplayVerdict {
    const verdict = this.check(counter);
    if (verdict !== 'ok') return verdict;
    if (counter > this.top) {
      const oldWord = this.top < 0n ? -1n : this.top >> 5n;
      const newWord = counter >> 5n;
      // clear every word the window slides over (at most the whole ring)
      const toClear = newWord - oldWord;
      const n = toClear > BigInt(RING_WORDS) ? RING_WORDS : Number(toClear);
      for (let i = 1; i <= n; i++) this.ring[Number((oldWord + BigInt(i)) % BigInt(RING_WORDS))] = 0;
      this.top = counter;
    }
    const word = Number((counter >> 5n) % BigInt(RING_WORDS));
    this.ring[word] = this.ring[word]! | (1 << Number(counter & WORD_BITS - 1n));
    return 'ok';
  }

  get highest(): bigint { return this.top; }
}
