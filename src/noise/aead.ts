// ChaCha20-Poly1305 (RFC 8439, IETF nonce) through libsodium (sodium-native), for a key
// set once (CipherState holds it). The hot path encrypts and decrypts IN PLACE with a
// detached tag: no cipher object, no output buffer and no copy per packet; the nonce is
// written into a buffer the caller reuses.
//
// Nonce (Noise rev. 34 §12.3): 4 zero bytes then the 64-bit counter, little-endian. The
// counter is a JavaScript Number, exact for integers below 2^53 (MAX_COUNTER = 2^53 − 1 is
// the largest accepted), so bytes 8..11 of the nonce never exceed 0x001fffff. Callers stop
// long before: a session rekeys every 2 minutes, and 2^53 packets at 10^6 packets/s would
// take 285 years.
import sodium from 'sodium-native';
import { AssertionError } from 'node:assert';

export const KEY_LEN = 32;
/** Poly1305 tag length. */
export const TAG_LEN = 16;
export const NONCE_LEN = 12;
/** The largest counter accepted (2^53 − 1): beyond it a Number is no longer exact. */
export const MAX_COUNTER = Number.MAX_SAFE_INTEGER;
const TWO_POW_32 = 0x1_0000_0000;

export function isValidCounter(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= MAX_COUNTER;
}

/** Writes the counter into bytes 4..11 of a 12-byte nonce whose bytes 0..3 stay zero. */
export function writeNonce(nonce: Uint8Array, counter: number): Uint8Array {
  const lo = counter >>> 0;
  const hi = (counter - lo) / TWO_POW_32;
  nonce[4] = lo; nonce[5] = lo >>> 8; nonce[6] = lo >>> 16; nonce[7] = lo >>> 24;
  nonce[8] = hi; nonce[9] = hi >>> 8; nonce[10] = hi >>> 16; nonce[11] = hi >>> 24;
  return nonce;
}

/** Encrypts `data` in place and writes the 16-byte tag into `tag`. The counter must be valid. */
export function encryptDetached(key: Uint8Array, nonce: Uint8Array, counter: number, ad: Uint8Array | null, data: Uint8Array, tag: Uint8Array): void {
  sodium.crypto_aead_chacha20poly1305_ietf_encrypt_detached(data, tag, data, nonEmpty(ad), null, writeNonce(nonce, counter), key);
}

/**
 * Verifies `tag` and only then decrypts `data` in place. False when the tag does not
 * verify or the counter is out of range (never throws on bad input); after a failed tag
 * check libsodium has zeroed `data`.
 */
export function decryptDetached(key: Uint8Array, nonce: Uint8Array, counter: number, ad: Uint8Array | null, data: Uint8Array, tag: Uint8Array): boolean {
  if (!isValidCounter(counter) || tag.length !== TAG_LEN) return false;
  // sodium-native reports a bad tag by throwing an Error: without a stack trace to capture
  // that costs a third as much, which is what a flood of forged packets costs the receiver
  const stackTraceLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    sodium.crypto_aead_chacha20poly1305_ietf_decrypt_detached(data, null, data, tag, nonEmpty(ad), writeNonce(nonce, counter), key);
    return true;
  } catch (err) {
    if (err instanceof AssertionError) throw err; // a size bug of ours, not bad input
    return false;
  } finally {
    Error.stackTraceLimit = stackTraceLimit;
  }
}

/** Copying form: a new buffer holding ciphertext ‖ tag. */
export function encryptCopy(key: Uint8Array, nonce: Uint8Array, counter: number, ad: Uint8Array | null, plaintext: Uint8Array): Uint8Array {
  const out = new Uint8Array(plaintext.length + TAG_LEN);
  out.set(plaintext, 0);
  encryptDetached(key, nonce, counter, ad, out.subarray(0, plaintext.length), out.subarray(plaintext.length));
  return out;
}

/** Copying form: the plaintext in a new buffer (the input is never written), or null. */
export function decryptCopy(key: Uint8Array, nonce: Uint8Array, counter: number, ad: Uint8Array | null, ciphertext: Uint8Array): Uint8Array | null {
  if (ciphertext.length < TAG_LEN) return null;
  const body = new Uint8Array(ciphertext.subarray(0, ciphertext.length - TAG_LEN)); // a copy even of a Buffer (whose slice() is a view)
  return decryptDetached(key, nonce, counter, ad, body, ciphertext.subarray(body.length)) ? body : null;
}

/**
 * One-shot forms for a key used once (the lobby's sealed boxes): no CipherState, a fresh
 * nonce buffer. The counter may be a bigint for callers that count that way; like every
 * counter here it must be below 2^53.
 */
export function aeadEncrypt(key: Uint8Array, counter: number | bigint, ad: Uint8Array, plaintext: Uint8Array): Uint8Array {
  return encryptCopy(key, new Uint8Array(NONCE_LEN), Number(counter), ad, plaintext);
}

/** Null when authentication fails (or the input is shorter than a tag); never throws on bad data. */
export function aeadDecrypt(key: Uint8Array, counter: number | bigint, ad: Uint8Array, ciphertext: Uint8Array): Uint8Array | null {
  if (key.length !== KEY_LEN) return null;
  return decryptCopy(key, new Uint8Array(NONCE_LEN), Number(counter), ad, ciphertext);
}

function nonEmpty(ad: Uint8Array | null): Uint8Array | null {
  return ad && ad.length > 0 ? ad : null;
}
