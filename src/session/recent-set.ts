// A set of at most `capacity` strings that forgets the oldest insertion first: the
// ephemeral keys of recently authenticated initiations, so an exact copy of one is dropped
// before any Diffie-Hellman.
export class RecentSet {
  /** insertion order is age order */
  private readonly items = new Set<string>();

  constructor(private readonly capacity: number) {
    if (!(capacity >= 1)) throw new RangeError('capacity must be at least 1');
  }

  get size(): number { return this.items.size; }
  has(item: string): boolean { return this.items.has(item); }

  add(item: string): void {
    if (this.items.has(item)) return;
    if (this.items.size >= this.capacity) this.items.delete(this.items.values().next().value!);
    this.items.add(item);
  }
}
