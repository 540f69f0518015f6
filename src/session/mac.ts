// mac1 over handshake messages (WireGuard §5.4.4, our labels): a keyed BLAKE2s-128 whose
// key is derived from the RECEIVER's static public key. Anyone who does not know that
// public key cannot make a valid mac1, and the receiver checks it before any
// Diffie-Hellman, so random garbage costs one hash, never a scalar multiplication.
//
//   mac1_key = BLAKE2s-256("mac1----" ‖ receiver_static_public)
//   mac1     = BLAKE2s-128(key = mac1_key, message bytes before the mac1 field)
import { blake2s } from '@noble/hashes/blake2.js';
import { timingSafeEqual } from 'node:crypto';
import { MAC_LEN } from './wire.js';

const LABEL_MAC1 = new TextEncoder().encode('mac1----');

export function mac1Key(receiverStaticPublic: Uint8Array): Uint8Array {
  const input = new Uint8Array(LABEL_MAC1.length + receiverStaticPublic.length);
  input.set(LABEL_MAC1, 0);
  input.set(receiverStaticPublic, LABEL_MAC1.length);
  return blake2s(input, { dkLen: 32 });
}

export function computeMac1(key: Uint8Array, covered: Uint8Array): Uint8Array {
  return blake2s(covered, { key, dkLen: MAC_LEN });
}

/** Constant-time check of a received mac1 against the bytes it covers. */
export function verifyMac1(key: Uint8Array, covered: Uint8Array, mac1: Uint8Array): boolean {
  if (mac1.length !== MAC_LEN) return false;
  return timingSafeEqual(computeMac1(key, covered), mac1);
}
