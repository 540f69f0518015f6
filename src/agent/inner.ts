// What travels INSIDE an agent↔agent Noise transport message: the first plaintext byte
// says what the rest is. Specified in docs/protocol/paths.md.
//
//   0x01 TRANSPORT   | stream-transport packet (src/transport), up to 1200 bytes
//   0x02 CANDIDATES  | count u8 | count × candidate
//        candidate:    family u8 (4 or 6) | port u16 BE | address (4 or 16 bytes)
//   0x03 PROBE       | probe id (8 bytes)      sent on ONE candidate path, never via relay
//   0x04 PROBE_ACK   | probe id (8 bytes)      answer, sent back on the path the probe came in
//
// Probes are authenticated by the session (they are Noise transport messages), so a
// confirmed probe proves the peer really answers at that address.
import { isIPv4, isIPv6 } from 'node:net';

export const INNER_TRANSPORT = 0x01;
export const INNER_CANDIDATES = 0x02;
export const INNER_PROBE = 0x03;
export const INNER_PROBE_ACK = 0x04;
export const PROBE_ID_LEN = 8;
/** more candidates than this are not sent (and not accepted) */
export const MAX_CANDIDATES = 16;

export interface Candidate { address: string; port: number }

export type Inner =
  | { type: 'transport'; packet: Uint8Array }
  | { type: 'candidates'; candidates: Candidate[] }
  | { type: 'probe'; id: Uint8Array }
  | { type: 'probeAck'; id: Uint8Array }
  | { type: 'invalid'; reason: string };

export function encodeTransportInner(packet: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + packet.length);
  out[0] = INNER_TRANSPORT;
  out.set(packet, 1);
  return out;
}

export function encodeProbe(kind: 'probe' | 'probeAck', id: Uint8Array): Uint8Array {
  if (id.length !== PROBE_ID_LEN) throw new RangeError('probe id must be 8 bytes');
  const out = new Uint8Array(1 + PROBE_ID_LEN);
  out[0] = kind === 'probe' ? INNER_PROBE : INNER_PROBE_ACK;
  out.set(id, 1);
  return out;
}

export function encodeCandidates(cands: Candidate[]): Uint8Array {
  const list = cands.filter((c) => isIPv4(c.address) || isIPv6(c.address)).slice(0, MAX_CANDIDATES);
  const parts: number[] = [INNER_CANDIDATES, list.length];
  for (const c of list) {
    const v4 = isIPv4(c.address);
    parts.push(v4 ? 4 : 6, (c.port >> 8) & 0xff, c.port & 0xff, ...(v4 ? ipv4Bytes(c.address) : ipv6Bytes(c.address)));
  }
  return new Uint8Array(parts);
}

/** Length-checked; never throws. */
export function decodeInner(b: Uint8Array): Inner {
  if (b.length < 1) return { type: 'invalid', reason: 'inner_empty' };
  switch (b[0]) {
    case INNER_TRANSPORT:
      return { type: 'transport', packet: b.subarray(1) };
    case INNER_PROBE:
    case INNER_PROBE_ACK:
      if (b.length !== 1 + PROBE_ID_LEN) return { type: 'invalid', reason: 'probe_length' };
      return { type: b[0] === INNER_PROBE ? 'probe' : 'probeAck', id: b.subarray(1) };
    case INNER_CANDIDATES: {
      if (b.length < 2) return { type: 'invalid', reason: 'candidates_short' };
      const n = b[1]!;
      if (n > MAX_CANDIDATES) return { type: 'invalid', reason: 'candidates_too_many' };
      const candidates: Candidate[] = [];
      let off = 2;
      for (let i = 0; i < n; i++) {
        if (off + 3 > b.length) return { type: 'invalid', reason: 'candidates_short' };
        const fam = b[off]!;
        const port = (b[off + 1]! << 8) | b[off + 2]!;
        const len = fam === 4 ? 4 : fam === 6 ? 16 : -1;
        if (len < 0) return { type: 'invalid', reason: 'candidates_family' };
        if (off + 3 + len > b.length) return { type: 'invalid', reason: 'candidates_short' };
        const a = b.subarray(off + 3, off + 3 + len);
        if (port === 0) return { type: 'invalid', reason: 'candidates_port' };
        candidates.push({ address: fam === 4 ? [...a].join('.') : ipv6Text(a), port });
        off += 3 + len;
      }
      if (off !== b.length) return { type: 'invalid', reason: 'candidates_trailing' };
      return { type: 'candidates', candidates };
    }
    default:
      return { type: 'invalid', reason: 'inner_unknown_type' };
  }
}

function ipv4Bytes(a: string): number[] { return a.split('.').map((x) => Number(x)); }

function ipv6Bytes(a: string): number[] {
  const [head, tail] = a.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  // an embedded IPv4 tail (::ffff:1.2.3.4) becomes two groups
  const expand = (g: string[]): string[] => g.flatMap((x) => (x.includes('.') ? ipv4ToGroups(x) : [x]));
  const hh = expand(h);
  const tt = expand(t);
  const groups = tail === undefined ? hh : [...hh, ...Array(8 - hh.length - tt.length).fill('0'), ...tt];
  return groups.flatMap((g) => { const v = parseInt(g, 16); return [(v >> 8) & 0xff, v & 0xff]; });
}

function ipv4ToGroups(a: string): string[] {
  const [w, x, y, z] = ipv4Bytes(a) as [number, number, number, number];
  return [((w << 8) | x).toString(16), ((y << 8) | z).toString(16)];
}

function ipv6Text(b: Uint8Array): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i]! << 8) | b[i + 1]!).toString(16));
  return groups.join(':').replace(/(^|:)0(:0)+(:|$)/, '::').replace(/:{3,}/, '::');
}
