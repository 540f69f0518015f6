// Test helper: parse a packet that must be well formed.
import { parsePacket, type ParsedPacket } from '../../src/transport/wire.js';

export function parseOk(buf: Uint8Array): ParsedPacket {
  const p = parsePacket(buf);
  if (typeof p === 'string') throw new Error(`packet does not parse: ${p}`);
  return p;
}
