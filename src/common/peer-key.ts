// The one representation of an X25519 public key (an agent's or a relay's) across the
// code base. Three forms of the same 32 bytes, computed once when the key enters:
//   bytes — Uint8Array(32), what the crypto and the wire use
//   text  — 44 characters of standard base64 with padding (the WireGuard convention):
//           what users read and write, logs, the session file
//   id    — the 32 bytes as a latin1 string: a cheap Map key, and what the relay's hot
//           path reads out of a frame (keyIdAt) without decoding base64 or allocating bytes
// Keys are compared by `id` (or equals()); bytewise order (compare()) picks the stream side
// and the winner of simultaneous handshakes.

const KEY_LEN = 32;
const KEY_TEXT_RE = /^[A-Za-z0-9+/]{43}=$/;

export class PeerKey {
  private constructor(
    readonly bytes: Uint8Array,
    readonly text: string,
    readonly id: string,
  ) {}

  /** Parses 44 base64 characters; the error names `what` and says what is wrong. */
  static fromText(text: string, what = 'key'): PeerKey {
    const t = text.trim();
    if (t.length !== 44) throw new Error(`${what}: a key is 44 base64 characters, got ${t.length}`);
    if (!KEY_TEXT_RE.test(t)) throw new Error(`${what}: not base64 (allowed: A-Z a-z 0-9 + /, ending in one '=')`);
    return PeerKey.fromBytes(Buffer.from(t, 'base64'));
  }

  /** Copies the 32 bytes (the caller may reuse its buffer). */
  static fromBytes(bytes: Uint8Array): PeerKey {
    if (bytes.length !== KEY_LEN) throw new Error(`a key is ${KEY_LEN} bytes, got ${bytes.length}`);
    const copy = new Uint8Array(bytes);
    const b = Buffer.from(copy.buffer, copy.byteOffset, KEY_LEN);
    return new PeerKey(copy, b.toString('base64'), b.toString('latin1'));
  }

  /** From an `id` (e.g. one read out of a frame with keyIdAt). */
  static fromId(id: string): PeerKey {
    if (id.length !== KEY_LEN) throw new Error(`a key id is ${KEY_LEN} characters, got ${id.length}`);
    return PeerKey.fromBytes(Buffer.from(id, 'latin1'));
  }

  equals(other: PeerKey): boolean {
    return this.id === other.id;
  }

  /** Bytewise order: negative when this key sorts first. */
  compare(other: PeerKey): number {
    return Buffer.compare(this.bytes, other.bytes);
  }

  toString(): string {
    return this.text;
  }

  toJSON(): string {
    return this.text;
  }
}

/** The id of the 32 key bytes at `offset` of a frame, with no PeerKey or copy made. */
export function keyIdAt(buf: Buffer, offset: number): string {
  return buf.toString('latin1', offset, offset + KEY_LEN);
}

/** Whether a string is a well-formed key text (for validators that report their own errors). */
export function isKeyText(text: string): boolean {
  return KEY_TEXT_RE.test(text.trim());
}
