// A small sorted set of disjoint half-open ranges [start, end), merged on insert.
// Used for acknowledged/lost stream byte ranges; typically holds a handful of entries.

export class RangeSet {
  readonly r: Array<[number, number]> = [];

  get length(): number {
    return this.r.length;
  }

  add(start: number, end: number): void {
    if (end <= start) return;
    const r = this.r;
    // find first range whose end >= start
    let i = 0;
    while (i < r.length && r[i]![1] < start) i++;
    let j = i;
    let s = start;
    let e = end;
    while (j < r.length && r[j]![0] <= e) {
      s = Math.min(s, r[j]![0]);
      e = Math.max(e, r[j]![1]);
      j++;
    }
    r.splice(i, j - i, [s, e]);
  }

  /** removes [start, end) from the set */
  remove(start: number, end: number): void {
    if (end <= start) return;
    const r = this.r;
    const out: Array<[number, number]> = [];
    for (const [s, e] of r) {
      if (e <= start || s >= end) out.push([s, e]);
      else {
        if (s < start) out.push([s, start]);
        if (e > end) out.push([end, e]);
      }
    }
    r.length = 0;
    r.push(...out);
  }

  /** true when [start, end) is entirely covered */
  covers(start: number, end: number): boolean {
    for (const [s, e] of this.r) if (s <= start && e >= end) return true;
    return false;
  }

  /** the first maximal sub-range of [start, end) not covered by the set, or null */
  firstGap(start: number, end: number): [number, number] | null {
    let cur = start;
    for (const [s, e] of this.r) {
      if (e <= cur) continue;
      if (s >= end) break;
      if (s > cur) return [cur, Math.min(s, end)];
      cur = Math.max(cur, e);
      if (cur >= end) return null;
    }
    return cur < end ? [cur, end] : null;
  }

  /** drops everything below `upTo` */
  trimBelow(upTo: number): void {
    const r = this.r;
    while (r.length && r[0]![1] <= upTo) r.shift();
    if (r.length && r[0]![0] < upTo) r[0]![0] = upTo;
  }
}
