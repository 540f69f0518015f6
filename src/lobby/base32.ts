// Base32 (RFC 4648 alphabet A–Z 2–7, no padding) for the invite and the fingerprint:
// letters and digits only, so a double click selects a whole invite, a QR code holds it
// in alphanumeric mode, and a fingerprint read aloud has no 0/O or 1/I to confuse.
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const VALUE = new Map([...ALPHABET].map((c, i) => [c, i]));

export function base32Encode(bytes: Uint8Array): string {
  let out = '';
  let acc = 0;
  let bits = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += ALPHABET[(acc >>> bits) & 31];
    }
    acc &= (1 << bits) - 1;
  }
  if (bits > 0) out += ALPHABET[(acc << (5 - bits)) & 31];
  return out;
}

/**
 * Decodes upper-case base32 without padding; null for a character outside the alphabet, a
 * length no byte string has, or non-zero spare bits (one byte string, one spelling).
 */
export function base32Decode(text: string): Uint8Array | null {
  const spare = (text.length * 5) % 8;
  if (spare >= 5) return null; // lengths ≡ 1, 3 or 6 (mod 8) encode no byte string
  const out = new Uint8Array(Math.floor((text.length * 5) / 8));
  let acc = 0;
  let bits = 0;
  let n = 0;
  for (const c of text) {
    const v = VALUE.get(c);
    if (v === undefined) return null;
    acc = (acc << 5) | v;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = (acc >>> bits) & 0xff;
    }
    acc &= (1 << bits) - 1;
  }
  if (acc !== 0) return null;
  return out;
}
