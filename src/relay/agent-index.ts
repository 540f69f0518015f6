// The two lookups of the relay's forwarding path, built so that one forwarded packet makes
// no string and hashes none (agents.ts keeps them in step with its by-key table):
//  - KeyBytesIndex: the destination, by the 32 key bytes inside the SEND frame. A Map keyed
//    by a 30-bit number read from the key's first 4 bytes (a small integer: V8 hashes it
//    without allocating), then a bytewise compare of all 32. Two keys sharing those 30 bits
//    share one bucket (a list); an attacker who grinds keys to collide with a victim's
//    (~2^30 key generations per key) only lengthens that victim's list by one
//    registration each, and every registration passes the relay's limits.
//  - UdpIndex: the source, by the datagram's port first (a number), then the address. Node
//    hands every datagram a fresh address string; comparing it with the one agent at that
//    port costs a few bytes' compare, hashing it (a Map keyed by address) reads all of it
//    and is what the old address → port → agent table paid per packet. Ports shared by
//    agents at several addresses get a Map by address.

export interface Keyed { key: { bytes: Uint8Array } }

const KEY_LEN = 32;

/** The bucket of a key: bits 0..29 of its first four bytes (little-endian), a V8 small integer. */
function bucketOf(b: Uint8Array, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | ((b[at + 3]! & 0x3f) << 24));
}

function sameKey(key: Uint8Array, b: Uint8Array, at: number): boolean {
  for (let i = 0; i < KEY_LEN; i++) if (key[i] !== b[at + i]) return false;
  return true;
}

export class KeyBytesIndex<T extends Keyed> {
  private readonly m = new Map<number, T | T[]>();

  /** The entry whose key is the 32 bytes at `at` of `b`. */
  get(b: Uint8Array, at: number): T | undefined {
    const e = this.m.get(bucketOf(b, at));
    if (e === undefined) return undefined;
    if (!Array.isArray(e)) return sameKey(e.key.bytes, b, at) ? e : undefined;
    for (const x of e) if (sameKey(x.key.bytes, b, at)) return x;
    return undefined;
  }

  /** Add `t` (the caller removed any entry of the same key first). */
  add(t: T): void {
    const k = bucketOf(t.key.bytes, 0);
    const e = this.m.get(k);
    if (e === undefined) this.m.set(k, t);
    else if (Array.isArray(e)) e.push(t);
    else this.m.set(k, [e, t]);
  }

  delete(t: T): void {
    const k = bucketOf(t.key.bytes, 0);
    const e = this.m.get(k);
    if (e === t) { this.m.delete(k); return; }
    if (!Array.isArray(e)) return;
    const i = e.indexOf(t);
    if (i >= 0) e.splice(i, 1);
    if (e.length === 1) this.m.set(k, e[0]!);
  }
}

export interface Placed { address: string; port: number }

export class UdpIndex<T extends Placed> {
  /** port -> the one entry at that port, or a Map by address when several addresses use it */
  private readonly m = new Map<number, T | Map<string, T>>();

  get(address: string, port: number): T | undefined {
    const e = this.m.get(port);
    if (e === undefined) return undefined;
    if (e instanceof Map) return e.get(address);
    return e.address === address ? e : undefined;
  }

  /** Add `t` (the caller removed any entry at the same address and port first). */
  add(t: T): void {
    const e = this.m.get(t.port);
    if (e === undefined) this.m.set(t.port, t);
    else if (e instanceof Map) e.set(t.address, t);
    else this.m.set(t.port, new Map([[e.address, e], [t.address, t]]));
  }

  /** Remove `t` if it is what the index holds at its address and port; whether it was. */
  delete(t: T): boolean {
    const e = this.m.get(t.port);
    if (e === t) { this.m.delete(t.port); return true; }
    if (!(e instanceof Map) || e.get(t.address) !== t) return false;
    e.delete(t.address);
    if (e.size === 1) this.m.set(t.port, e.values().next().value as T);
    return true;
  }
}
