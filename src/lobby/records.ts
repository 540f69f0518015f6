// What members seal into the lobby (docs/protocol/lobby.md "Records"): the entry
// plaintext (who joined) and the confirmation plaintext (which session file, with key
// proofs). Fixed layouts, every length checked; decoders return null, never throw.
//
// entry (233 bytes):         public key (32) ‖ joinedAt ms (8) ‖ name length (1) ‖ name, zero-padded (192)
// confirmation (32+16·(M-1)): F = SHA-256 of the session text (32) ‖ key proofs (16 each, roster order, skipping the sender)
import { MAX_NAME_LENGTH } from '../agent/session-file.js';

export const KEY_LEN = 32;
/** 64 UTF-16 units of the Basic Multilingual Plane are at most 192 bytes of UTF-8 */
export const NAME_FIELD_LEN = 3 * MAX_NAME_LENGTH;
export const ENTRY_PLAINTEXT_LEN = KEY_LEN + 8 + 1 + NAME_FIELD_LEN;
export const FILE_HASH_LEN = 32;
export const PROOF_LEN = 16;

export interface EntryPlain {
  publicKey: Uint8Array;
  /** milliseconds since the Unix epoch on the member's clock: the join order */
  joinedAt: number;
  /** undefined: the member gave no name */
  name?: string;
}

export interface ConfirmPlain {
  fileHash: Uint8Array;
  proofs: Uint8Array[];
}

/** The session file's rule for names (1..64 characters, no control characters), or null. */
export function nameProblem(name: string): string | null {
  // eslint-disable-next-line no-control-regex
  if (name.length === 0 || name.length > MAX_NAME_LENGTH || /[\u0000-\u001f\u007f]/.test(name)) {
    return `must be 1..${MAX_NAME_LENGTH} characters without control characters`;
  }
  if (Buffer.byteLength(name, 'utf8') > NAME_FIELD_LEN) return `at most ${NAME_FIELD_LEN} bytes of UTF-8`;
  return null;
}

export function encodeEntry(e: EntryPlain): Uint8Array {
  if (e.publicKey.length !== KEY_LEN) throw new Error('entry: a key is 32 bytes');
  if (!Number.isSafeInteger(e.joinedAt) || e.joinedAt < 0) throw new Error('entry: joinedAt must be a non-negative safe integer');
  const name = Buffer.from(e.name ?? '', 'utf8');
  if (e.name !== undefined && nameProblem(e.name)) throw new Error(`entry: name ${nameProblem(e.name)}`);
  const out = Buffer.alloc(ENTRY_PLAINTEXT_LEN);
  out.set(e.publicKey, 0);
  out.writeBigUInt64BE(BigInt(e.joinedAt), KEY_LEN);
  out[KEY_LEN + 8] = name.length;
  name.copy(out, KEY_LEN + 9);
  return out;
}

export function decodeEntry(b: Uint8Array): EntryPlain | null {
  if (b.length !== ENTRY_PLAINTEXT_LEN) return null;
  const buf = Buffer.from(b.buffer, b.byteOffset, b.length);
  const joined = buf.readBigUInt64BE(KEY_LEN);
  if (joined > BigInt(Number.MAX_SAFE_INTEGER)) return null;
  const nameLen = buf[KEY_LEN + 8]!;
  if (nameLen > NAME_FIELD_LEN) return null;
  const nameStart = KEY_LEN + 9;
  // the padding must be zero: one plaintext, one meaning
  if (buf.subarray(nameStart + nameLen).some((x) => x !== 0)) return null;
  const entry: EntryPlain = { publicKey: new Uint8Array(buf.subarray(0, KEY_LEN)), joinedAt: Number(joined) };
  if (nameLen > 0) {
    let name: string;
    try {
      name = new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(nameStart, nameStart + nameLen));
    } catch {
      return null;
    }
    if (nameProblem(name)) return null;
    entry.name = name;
  }
  return entry;
}

export function confirmPlaintextLen(parties: number): number {
  return FILE_HASH_LEN + PROOF_LEN * (parties - 1);
}

export function encodeConfirm(c: ConfirmPlain): Uint8Array {
  if (c.fileHash.length !== FILE_HASH_LEN || c.proofs.some((p) => p.length !== PROOF_LEN)) throw new Error('confirmation: bad field length');
  const out = new Uint8Array(FILE_HASH_LEN + PROOF_LEN * c.proofs.length);
  out.set(c.fileHash, 0);
  c.proofs.forEach((p, i) => out.set(p, FILE_HASH_LEN + PROOF_LEN * i));
  return out;
}

/** `parties` is the reader's roster size: a confirmation for another size is not one for its roster. */
export function decodeConfirm(b: Uint8Array, parties: number): ConfirmPlain | null {
  if (parties < 2 || b.length !== confirmPlaintextLen(parties)) return null;
  const proofs: Uint8Array[] = [];
  for (let i = 0; i < parties - 1; i++) proofs.push(b.slice(FILE_HASH_LEN + PROOF_LEN * i, FILE_HASH_LEN + PROOF_LEN * (i + 1)));
  return { fileHash: b.slice(0, FILE_HASH_LEN), proofs };
}
