// Receive-side reassembly of one stream: out-of-order fragments wait in a binary min-heap
// keyed by offset (O(log n) per fragment, however they arrive), in-order bytes move to the
// `ready` queue for read(). Overlaps and duplicates are trimmed when a fragment leaves the
// heap. Every buffered fragment is charged its length plus FRAGMENT_COST bytes of
// bookkeeping, so the caller can bound memory by bytes and by fragment count at once.

/** bookkeeping charged per buffered out-of-order fragment (heap entry + view), bytes */
export const FRAGMENT_COST = 64;

interface Fragment {
  off: number;
  data: Uint8Array;
}

export class Reassembler {
  /** in-order bytes not read yet */
  ready: Uint8Array[] = [];
  readyBytes = 0;
  /** next offset expected in order */
  contig = 0;
  /** out-of-order fragments: a min-heap on `off` */
  private heap: Fragment[] = [];
  /** Σ (length + FRAGMENT_COST) over the heap */
  charged = 0;

  get fragments(): number {
    return this.heap.length;
  }

  /** what buffering [off, off + len) would add to `charged` (0 when it is in order or old) */
  chargeFor(off: number, len: number): number {
    if (len === 0 || off + len <= this.contig || off <= this.contig) return 0;
    return len + FRAGMENT_COST;
  }

  /** inserts a fragment; returns true when new in-order bytes became readable */
  insert(off: number, data: Uint8Array): boolean {
    const end = off + data.length;
    if (data.length === 0 || end <= this.contig) return false;
    if (off > this.contig) {
      this.push({ off, data });
      return false;
    }
    this.append(data.subarray(this.contig - off), end);
    // drain what the heap now holds in order
    while (this.heap.length && this.heap[0]!.off <= this.contig) {
      const f = this.pop();
      const fEnd = f.off + f.data.length;
      if (fEnd > this.contig) this.append(f.data.subarray(this.contig - f.off), fEnd);
    }
    return true;
  }

  /** takes the next in-order chunk */
  shift(): Uint8Array | undefined {
    const c = this.ready.shift();
    if (c) this.readyBytes -= c.length;
    return c;
  }

  /** drops everything buffered (the stream was reset) */
  discard(): void {
    this.ready = [];
    this.readyBytes = 0;
    this.heap = [];
    this.charged = 0;
  }

  private append(d: Uint8Array, end: number): void {
    this.ready.push(d);
    this.readyBytes += d.length;
    this.contig = end;
  }

  private push(f: Fragment): void {
    const h = this.heap;
    h.push(f);
    this.charged += f.data.length + FRAGMENT_COST;
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p]!.off <= f.off) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = f;
  }

  private pop(): Fragment {
    const h = this.heap;
    const top = h[0]!;
    const last = h.pop()!;
    this.charged -= top.data.length + FRAGMENT_COST;
    if (h.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= h.length) break;
        const r = l + 1;
        const m = r < h.length && h[r]!.off < h[l]!.off ? r : l;
        if (h[m]!.off >= last.off) break;
        h[i] = h[m]!;
        i = m;
      }
      h[i] = last;
    }
    return top;
  }
}
