// Public keys as users see them: standard base64 with padding, 44 characters for 32
// bytes (the WireGuard convention).
const KEY_RE = /^[A-Za-z0-9+/]{43}=$/;

export function encodeKey(key: Uint8Array): string {
  if (key.length !== 32) throw new Error(`a key is 32 bytes, got ${key.length}`);
  return Buffer.from(key).toString('base64');
}

/** Parses a 44-character base64 key; the error names `what` and says what is wrong. */
export function decodeKey(text: string, what: string): Uint8Array {
  const t = text.trim();
  if (t.length !== 44) throw new Error(`${what}: a key is 44 base64 characters, got ${t.length}`);
  if (!KEY_RE.test(t)) throw new Error(`${what}: not base64 (allowed: A-Z a-z 0-9 + /, ending in one '=')`);
  return new Uint8Array(Buffer.from(t, 'base64'));
}
