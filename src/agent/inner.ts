// What travels INSIDE an agent↔agent Noise transport message: the first plaintext byte
// says what the rest is. Specified in docs/protocol/paths.md.
//
//   0x01 TRANSPORT   | stream-transport packet (src/transport), up to 1200 bytes
//   0x02 CANDIDATES  | count u8 (≤ 16) | count × candidate
//        candidate:    family u8 (4 or 6) | source u8 | port u16 BE | address (4 or 16 bytes)
//   0x03 PROBE       | probe id (8 bytes)      sent on ONE candidate path, never via relay
//   0x04 PROBE_ACK   | probe id (8 bytes)      answer, sent back on the path the probe came in
//   0x05 RELAYS      | mask u32 BE             bit i: registered with relay i of the session file
//   0x06 PING        | ping id (8 bytes)       on the active path (relay or direct); `mpyc-agent ping`
//   0x07 PONG        | ping id (8 bytes)       answer, sent back on the path the ping came in
//   0x08 NAT         | v4 u8 | v6 u8           our mapping behaviour per family: 0 unknown,
//                                              1 endpoint-independent, 2 endpoint-dependent
//   0x09 PATH        | mechanism u8            what found our active direct path to the peer:
//                                              0 none (relay), 1 lan, 2 stun, 3 ipv6,
//                                              4 port-mapping, 5 birthday
//
// Probes are authenticated by the session (they are Noise transport messages), so a
// confirmed probe proves the peer really answers at that address.
import { canonicalIp, familyOf, ipBytes, ipText, isLinkLocal6 } from './addresses.js';
import type { MappingBehaviour } from './nat-type.js';
import type { PathMechanism } from './types.js';

export const INNER_TRANSPORT = 0x01;
export const INNER_CANDIDATES = 0x02;
export const INNER_PROBE = 0x03;
export const INNER_PROBE_ACK = 0x04;
export const INNER_RELAYS = 0x05;
export const INNER_PING = 0x06;
export const INNER_PONG = 0x07;
export const INNER_NAT = 0x08;
export const INNER_PATH = 0x09;
export const PROBE_ID_LEN = 8;
/** more candidates than this are not sent (and not accepted) */
export const MAX_CANDIDATES = 16;
/** relays a RELAYS mask can name (a session file lists far fewer) */
export const MAX_RELAYS = 32;
const RELAYS_LEN = 1 + 4;
const NAT_LEN = 1 + 2;
const PATH_LEN = 1 + 1;
/** NAT bytes; an unknown value (a newer agent's finer verdict) decodes as unknown */
const MAPPING_BYTES: Record<MappingBehaviour, number> = { unknown: 0, independent: 1, dependent: 2 };
const MAPPING_OF_BYTE = ['unknown', 'independent', 'dependent'] as const;
/** PATH bytes (0: no direct path); an unknown value decodes as no report */
const MECHANISM_BYTES: Record<PathMechanism, number> = { lan: 1, stun: 2, ipv6: 3, 'port-mapping': 4, birthday: 5 };
const MECHANISM_OF_BYTE = [undefined, 'lan', 'stun', 'ipv6', 'port-mapping', 'birthday'] as const;

/**
 * How a candidate address was found (the `source` byte). `observed` and `birthday` are
 * never sent: the source address of an authenticated packet (peer-reflexive), and an
 * address found by birthday probing (birthday.ts) — both learned by the receiving side.
 * Mechanisms added later get new byte values; an unknown byte decodes as `other`.
 */
export type CandidateSource = 'interface' | 'stun' | 'portmap' | 'observed' | 'birthday' | 'other';
const SOURCE_BYTES: Record<Exclude<CandidateSource, 'observed' | 'birthday' | 'other'>, number> = { interface: 1, stun: 2, portmap: 3 };
const SOURCE_OF_BYTE = new Map<number, CandidateSource>(Object.entries(SOURCE_BYTES).map(([k, v]) => [v, k as CandidateSource]));

export interface Candidate {
  /** canonical text (addresses.ts); link-local IPv6 with this host's zone */
  address: string;
  port: number;
  source?: CandidateSource;
  /**
   * The local socket this address is reached from, when it is not the agent's main socket
   * of its family: a birthday socket (birthday-sockets.ts). Never on the wire.
   */
  via?: number;
}

export type Inner =
  | { type: 'transport'; packet: Uint8Array }
  | { type: 'candidates'; candidates: Candidate[] }
  | { type: 'probe' | 'probeAck' | 'ping' | 'pong'; id: Uint8Array }
  | { type: 'relays'; mask: number }
  | { type: 'nat'; v4: MappingBehaviour; v6: MappingBehaviour }
  | { type: 'path'; mechanism: PathMechanism | undefined }
  | { type: 'invalid'; reason: string };

export function encodeTransportInner(packet: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + packet.length);
  out[0] = INNER_TRANSPORT;
  out.set(packet, 1);
  return out;
}

const ID_TYPES = { probe: INNER_PROBE, probeAck: INNER_PROBE_ACK, ping: INNER_PING, pong: INNER_PONG } as const;

export function encodeProbe(kind: keyof typeof ID_TYPES, id: Uint8Array): Uint8Array {
  if (id.length !== PROBE_ID_LEN) throw new RangeError('probe id must be 8 bytes');
  const out = new Uint8Array(1 + PROBE_ID_LEN);
  out[0] = ID_TYPES[kind];
  out.set(id, 1);
  return out;
}

export function encodeRelays(mask: number): Uint8Array {
  const out = new Uint8Array(RELAYS_LEN);
  out[0] = INNER_RELAYS;
  new DataView(out.buffer).setUint32(1, mask >>> 0, false);
  return out;
}

export function encodeNat(v4: MappingBehaviour, v6: MappingBehaviour): Uint8Array {
  return new Uint8Array([INNER_NAT, MAPPING_BYTES[v4], MAPPING_BYTES[v6]]);
}

export function encodePath(mechanism: PathMechanism | undefined): Uint8Array {
  return new Uint8Array([INNER_PATH, mechanism === undefined ? 0 : MECHANISM_BYTES[mechanism]]);
}

export function encodeCandidates(cands: Candidate[]): Uint8Array {
  const parts: number[] = [INNER_CANDIDATES, 0];
  let n = 0;
  for (const c of cands) {
    const bytes = ipBytes(c.address);
    if (!bytes || n === MAX_CANDIDATES) continue;
    const source = c.source && c.source in SOURCE_BYTES ? SOURCE_BYTES[c.source as keyof typeof SOURCE_BYTES] : SOURCE_BYTES.interface;
    parts.push(bytes.length === 4 ? 4 : 6, source, (c.port >> 8) & 0xff, c.port & 0xff, ...bytes);
    n++;
  }
  parts[1] = n;
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
    case INNER_PING:
    case INNER_PONG: {
      if (b.length !== 1 + PROBE_ID_LEN) return { type: 'invalid', reason: b[0] <= INNER_PROBE_ACK ? 'probe_length' : 'ping_length' };
      const type = b[0] === INNER_PROBE ? 'probe' : b[0] === INNER_PROBE_ACK ? 'probeAck' : b[0] === INNER_PING ? 'ping' : 'pong';
      return { type, id: b.subarray(1) };
    }
    case INNER_RELAYS:
      if (b.length !== RELAYS_LEN) return { type: 'invalid', reason: 'relays_length' };
      return { type: 'relays', mask: new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(1, false) };
    case INNER_CANDIDATES:
      return decodeCandidates(b);
    case INNER_NAT:
      if (b.length !== NAT_LEN) return { type: 'invalid', reason: 'nat_length' };
      return { type: 'nat', v4: MAPPING_OF_BYTE[b[1]!] ?? 'unknown', v6: MAPPING_OF_BYTE[b[2]!] ?? 'unknown' };
    case INNER_PATH:
      if (b.length !== PATH_LEN) return { type: 'invalid', reason: 'path_length' };
      return { type: 'path', mechanism: MECHANISM_OF_BYTE[b[1]!] };
    default:
      return { type: 'invalid', reason: 'inner_unknown_type' };
  }
}

function decodeCandidates(b: Uint8Array): Inner {
  if (b.length < 2) return { type: 'invalid', reason: 'candidates_short' };
  const n = b[1]!;
  if (n > MAX_CANDIDATES) return { type: 'invalid', reason: 'candidates_too_many' };
  const candidates: Candidate[] = [];
  let off = 2;
  for (let i = 0; i < n; i++) {
    if (off + 4 > b.length) return { type: 'invalid', reason: 'candidates_short' };
    const fam = b[off]!;
    const source = SOURCE_OF_BYTE.get(b[off + 1]!) ?? 'other';
    const port = (b[off + 2]! << 8) | b[off + 3]!;
    const len = fam === 4 ? 4 : fam === 6 ? 16 : -1;
    if (len < 0) return { type: 'invalid', reason: 'candidates_family' };
    if (off + 4 + len > b.length) return { type: 'invalid', reason: 'candidates_short' };
    if (port === 0) return { type: 'invalid', reason: 'candidates_port' };
    candidates.push({ address: ipText(b.subarray(off + 4, off + 4 + len)), port, source });
    off += 4 + len;
  }
  if (off !== b.length) return { type: 'invalid', reason: 'candidates_trailing' };
  return { type: 'candidates', candidates };
}

/**
 * A signalled link-local IPv6 candidate names no interface (zones are local): it becomes one
 * candidate per local interface zone that has a link-local address. Others pass unchanged.
 */
export function withLocalZones(c: Candidate, zones: readonly string[]): Candidate[] {
  if (familyOf(c.address) !== 6 || !isLinkLocal6(c.address)) return [c];
  return zones.map((z) => ({ ...c, address: canonicalIp(`${c.address}%${z}`)! }));
}
