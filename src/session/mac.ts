// mac1 and mac2 over handshake messages (WireGuard whitepaper §5.4.4 and §5.4.7, our
// labels): both are a keyed BLAKE2s-128 of the message bytes before the field.
//
//   mac1_key   = BLAKE2s-256("mac1----" ‖ receiver_static_public)
//   mac1       = BLAKE2s-128(key = mac1_key, message bytes before mac1)
//   mac2       = BLAKE2s-128(key = cookie,   message bytes before mac2)   (cookie.ts)
//   cookie_key = BLAKE2s-256("cookie--" ‖ receiver_static_public)       (encrypts cookie replies)
//
// Anyone who does not know the receiver's public key cannot make a valid mac1, and the
// receiver checks it before any Diffie-Hellman, so random garbage costs one hash, never a
// scalar multiplication. mac2 proves the sender received a cookie at its source (cookie.ts).
import { blake2s } from '@noble/hashes/blake2.js';
import { timingSafeEqual } from 'node:crypto';
import { MAC_LEN } from './wire.js';

const LABEL_MAC1 = new TextEncoder().encode('mac1----');
const LABEL_COOKIE = new TextEncoder().encode('cookie--');

function labelledKey(label: Uint8Array, receiverStaticPublic: Uint8Array): Uint8Array {
  const input = new Uint8Array(label.length + receiverStaticPublic.length);
  input.set(label, 0);
  input.set(receiverStaticPublic, label.length);
  return blake2s(input, { dkLen: 32 });
}

export function mac1Key(receiverStaticPublic: Uint8Array): Uint8Array {
  return labelledKey(LABEL_MAC1, receiverStaticPublic);
}

/** The XChaCha20-Poly1305 key of cookie replies sent by the owner of this static key. */
export function cookieKey(receiverStaticPublic: Uint8Array): Uint8Array {
  return labelledKey(LABEL_COOKIE, receiverStaticPublic);
}

/** Keyed BLAKE2s-128: mac1 (key = mac1_key), mac2 (key = the cookie), the cookie itself (key = the secret). */
export function computeMac(key: Uint8Array, covered: Uint8Array): Uint8Array {
  return blake2s(covered, { key, dkLen: MAC_LEN });
}

/** Constant-time check of a received MAC against the bytes it covers. */
export function verifyMac(key: Uint8Array, covered: Uint8Array, mac: Uint8Array): boolean {
  if (mac.length !== MAC_LEN) return false;
  return timingSafeEqual(computeMac(key, covered), mac);
}
