// Fixed-size secret slots carved out of a few large buffers: the relay keeps a pair of
// control keys for every registered agent (100 000 by default), and a small typed array
// per key costs far more than its 32 bytes once libsodium has touched it (V8 then moves it
// off the JavaScript heap into an ArrayBuffer of its own, ~0.4 KB each). A slot is a view
// into a shared chunk: no backing store of its own, nothing to move.
//
// Chunks are allocated outside Node's Buffer pool (allocUnsafeSlow) and zero-filled; a
// released slot is zeroed at once and reused by the next alloc(). The slab never shrinks:
// its size is the high-water mark of slots in use (64 bytes each), bounded by the caller
// (the relay's --max-agents).

export class KeySlab {
  private readonly free: Uint8Array[] = [];
  private chunk: Buffer | undefined;
  private carved = 0;
  private live = 0;

  /** `slotBytes` per slot, `slotsPerChunk` slots per chunk allocation. */
  constructor(readonly slotBytes: number, private readonly slotsPerChunk = 256) {}

  /** A zeroed slot. */
  alloc(): Uint8Array {
    this.live++;
    const reused = this.free.pop();
    if (reused) return reused;
    if (!this.chunk || this.carved === this.slotsPerChunk) {
      this.chunk = Buffer.allocUnsafeSlow(this.slotBytes * this.slotsPerChunk).fill(0);
      this.carved = 0;
    }
    const at = this.carved++ * this.slotBytes;
    return this.chunk.subarray(at, at + this.slotBytes);
  }

  /** Zero `slot` and keep it for reuse; the caller must drop its reference. */
  release(slot: Uint8Array): void {
    slot.fill(0);
    this.free.push(slot);
    this.live--;
  }

  /** slots handed out and not released */
  get inUse(): number { return this.live; }
}
