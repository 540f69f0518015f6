// NAT-PMP (RFC 6886) messages for one UDP mapping: the client's requests and the
// gateway's answers. Pure bytes; length-checked; decoding never throws. Server port 5351.
//
//   external address request:  vers u8 = 0 | op u8 = 0                                  (2 B)
//   external address answer:   vers 0 | op 128 | result u16 | epoch u32 | address 4 B   (12 B)
//   map UDP request:           vers 0 | op 1 | reserved u16 = 0 | internal port u16 |
//                              suggested external port u16 | lifetime u32 (s)          (12 B)
//   map UDP answer:            vers 0 | op 129 | result u16 | epoch u32 |
//                              internal port u16 | external port u16 | lifetime u32     (16 B)
//   delete:                    a map request with lifetime 0 and external port 0
//
// All integers big-endian. An answer to a request whose version the gateway does not speak
// (e.g. a PCP request, version 2) is version 0, op 128 + the request's op, result 1.
export const NATPMP_PORT = 5351;
export const NATPMP_VERSION = 0;
const OP_EXTERNAL_ADDRESS = 0;
const OP_MAP_UDP = 1;
const OP_ANSWER = 128;
const EXTERNAL_ANSWER_LEN = 12;
const MAP_ANSWER_LEN = 16;

/** RFC 6886 §3.5 result codes */
export const NATPMP_RESULT = { success: 0, unsupportedVersion: 1, refused: 2, networkFailure: 3, outOfResources: 4, unsupportedOpcode: 5 } as const;

export function encodeExternalAddressRequest(): Uint8Array {
  return new Uint8Array([NATPMP_VERSION, OP_EXTERNAL_ADDRESS]);
}

export function encodeMapUdpRequest(internalPort: number, suggestedExternalPort: number, lifetimeSec: number): Uint8Array {
  const b = new Uint8Array(12);
  const v = new DataView(b.buffer);
  b[0] = NATPMP_VERSION;
  b[1] = OP_MAP_UDP;
  v.setUint16(4, internalPort);
  v.setUint16(6, suggestedExternalPort);
  v.setUint32(8, lifetimeSec >>> 0);
  return b;
}

export type NatPmpAnswer =
  | { kind: 'external'; result: number; epoch: number; address: string }
  | { kind: 'map'; result: number; epoch: number; internalPort: number; externalPort: number; lifetimeSec: number }
  | { kind: 'invalid'; reason: string };

export function decodeNatPmpAnswer(b: Uint8Array): NatPmpAnswer {
  if (b.length < 4) return { kind: 'invalid', reason: 'short' };
  if (b[0] !== NATPMP_VERSION) return { kind: 'invalid', reason: 'version' };
  const kind = b[1] === OP_ANSWER + OP_EXTERNAL_ADDRESS ? 'external' : b[1] === OP_ANSWER + OP_MAP_UDP ? 'map' : undefined;
  if (!kind) return { kind: 'invalid', reason: 'opcode' };
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const result = v.getUint16(2);
  const epoch = b.length >= 8 ? v.getUint32(4) : 0;
  // an error answer carries nothing else we use (and may be as short as its header)
  if (result !== NATPMP_RESULT.success) {
    return kind === 'map' ? { kind, result, epoch, internalPort: 0, externalPort: 0, lifetimeSec: 0 } : { kind, result, epoch, address: '' };
  }
  if (b.length < (kind === 'map' ? MAP_ANSWER_LEN : EXTERNAL_ANSWER_LEN)) return { kind: 'invalid', reason: 'short' };
  if (kind === 'external') return { kind, result, epoch, address: `${b[8]}.${b[9]}.${b[10]}.${b[11]}` };
  return { kind, result, epoch, internalPort: v.getUint16(8), externalPort: v.getUint16(10), lifetimeSec: v.getUint32(12) };
}
