// Key text <-> bytes with small bounded caches, so the per-packet path does not
// base64-decode or -encode a 32-byte key every time.

export function keyFromBase64(text: string, what = 'key'): Uint8Array {
  const t = text.trim();
  if (!/^[A-Za-z0-9+/]{43}=$/.test(t)) throw new Error(`${what}: expected 44 characters of base64 (32 bytes), got ${JSON.stringify(text.slice(0, 60))}`);
  return new Uint8Array(Buffer.from(t, 'base64'));
}

export function keyToBase64(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('base64');
}

/** A Map that forgets everything when it reaches its bound: O(1), never unbounded. */
export class BoundedCache<K, V> {
  private readonly m = new Map<K, V>();
  constructor(private readonly max: number) {}
  get(k: K): V | undefined { return this.m.get(k); }
  set(k: K, v: V): void {
    if (this.m.size >= this.max) this.m.clear();
    this.m.set(k, v);
  }
}

/** base64 key -> bytes */
export class KeyBytesCache {
  private readonly c = new BoundedCache<string, Uint8Array>(4096);
  get(text: string): Uint8Array {
    let k = this.c.get(text);
    if (!k) { k = keyFromBase64(text, 'peer key'); this.c.set(text, k); }
    return k;
  }
}

/** 32 key bytes inside a frame (latin1 string is cheap to make) -> base64 */
export class KeyTextCache {
  private readonly c = new BoundedCache<string, string>(4096);
  get(buf: Buffer, start: number): string {
    const bin = buf.toString('latin1', start, start + 32);
    let t = this.c.get(bin);
    if (!t) { t = buf.toString('base64', start, start + 32); this.c.set(bin, t); }
    return t;
  }
}
