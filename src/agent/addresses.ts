// IP address text and bytes for candidates. Canonical text is what node:net's
// SocketAddress prints (inet_ntop: RFC 5952 for IPv6 — lower case, the longest run of zero
// groups shortened, a lone zero group kept), so two spellings of one address compare equal
// as strings. An IPv6 link-local address keeps its zone (`fe80::1%eth0`): the zone names an
// interface of THIS host, so it never goes on the wire (a receiver adds its own zones).
import { SocketAddress, isIPv4, isIPv6 } from 'node:net';

export type Family = 4 | 6;

/** Canonical text of an IPv4 or IPv6 address (zone kept), or null when it is neither. */
export function canonicalIp(text: string): string | null {
  if (isIPv4(text)) return new SocketAddress({ address: text, family: 'ipv4' }).address;
  const [base, zone] = splitZone(text);
  if (!isIPv6(base)) return null;
  const canon = new SocketAddress({ address: base, family: 'ipv6' }).address;
  return zone ? `${canon}%${zone}` : canon;
}

export function familyOf(address: string): Family {
  return address.includes(':') ? 6 : 4;
}

/** `fe80::1%eth0` → [`fe80::1`, `eth0`]; no zone → [address, undefined]. */
export function splitZone(address: string): [string, string | undefined] {
  const i = address.indexOf('%');
  return i < 0 ? [address, undefined] : [address.slice(0, i), address.slice(i + 1) || undefined];
}

export function isLinkLocal6(address: string): boolean {
  return /^fe[89ab][0-9a-f]:/i.test(address);
}

/** The 4 or 16 address bytes (zone dropped); null for anything that is not an address. */
export function ipBytes(address: string): Uint8Array | null {
  const canon = canonicalIp(address);
  if (canon === null) return null;
  if (familyOf(canon) === 4) return new Uint8Array(canon.split('.').map(Number));
  const [base] = splitZone(canon);
  // canonical text: at most one '::', hex groups, optionally a dotted IPv4 tail
  const [head, tail] = base.split('::') as [string, string | undefined];
  const groups = (part: string | undefined): number[] => (part ? part.split(':') : []).flatMap((g) => {
    if (!g.includes('.')) return [parseInt(g, 16)];
    const [a, b, c, d] = g.split('.').map(Number) as [number, number, number, number];
    return [(a << 8) | b, (c << 8) | d];
  });
  const h = groups(head);
  const t = groups(tail);
  const all = tail === undefined ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  const out = new Uint8Array(16);
  all.forEach((g, i) => { out[2 * i] = g >> 8; out[2 * i + 1] = g & 0xff; });
  return out;
}

/** Canonical text of 4 or 16 address bytes. */
export function ipText(bytes: Uint8Array): string {
  if (bytes.length === 4) return [...bytes].join('.');
  if (bytes.length !== 16) throw new RangeError('an IP address is 4 or 16 bytes');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return new SocketAddress({ address: groups.join(':'), family: 'ipv6' }).address;
}

/** `1.2.3.4:5` or `[::1]:5` (brackets keep the port readable). */
export function endpointText(address: string, port: number): string {
  return familyOf(address) === 6 ? `[${address}]:${port}` : `${address}:${port}`;
}
