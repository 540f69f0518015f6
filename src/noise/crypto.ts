// The Noise primitives other than the AEAD (aead.ts): X25519 DH and a hash (BLAKE2s or
// SHA-256) with the HMAC/HKDF that Noise rev. 34 §4.3 defines on top of it.
//
// X25519 comes from libsodium (sodium-native): bench/crypto.ts measured it ~3x faster
// than node:crypto, which needs a KeyObject per peer key and per ephemeral. Node 20's
// generateKeyPairSync('x25519') + JWK export can also deadlock inside a garbage collection
// (a KeyGenJob destructor waits for a mutex the export holds), which hung handshake loops
// on this machine; libsodium key generation has no such path.
// The hashes come from OpenSSL through node:crypto (libsodium has no BLAKE2s).
import sodium from 'sodium-native';
import { createHash, createHmac } from 'node:crypto';
import { NoiseError } from './errors.js';

export { aeadDecrypt, aeadEncrypt } from './aead.js';

export interface KeyPair { publicKey: Uint8Array; privateKey: Uint8Array }

/** DHLEN for 25519 (Noise §12.1). */
export const DHLEN = 32;

/** X25519 operations this process performed (the flood bench and the DoS tests count with it). */
export const dhCounter = { operations: 0 };

export function generateKeyPair(): KeyPair {
  const privateKey = new Uint8Array(DHLEN);
  sodium.randombytes_buf(privateKey);
  return { publicKey: publicKeyOf(privateKey), privateKey };
}

export function publicKeyOf(privateKey: Uint8Array): Uint8Array {
  if (privateKey.length !== DHLEN) throw new NoiseError('X25519 private key must be 32 bytes');
  const publicKey = new Uint8Array(DHLEN);
  sodium.crypto_scalarmult_base(publicKey, privateKey);
  return publicKey;
}

/**
 * X25519. libsodium refuses a low-order peer key (the all-zero shared secret): that, like
 * a wrong length, becomes a NoiseError so a receive path can reject cleanly.
 */
export function dh(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
  if (publicKey.length !== DHLEN) throw new NoiseError('X25519 public key must be 32 bytes');
  if (privateKey.length !== DHLEN) throw new NoiseError('X25519 private key must be 32 bytes');
  const shared = new Uint8Array(DHLEN);
  dhCounter.operations++;
  try {
    sodium.crypto_scalarmult(shared, privateKey, publicKey);
  } catch {
    throw new NoiseError('X25519 failed: low-order public key');
  }
  return shared;
}

export interface NoiseHash {
  name: 'BLAKE2s' | 'SHA256';
  hashLen: 32;
  /** HASH(parts[0] ‖ parts[1] ‖ …) without concatenating them first */
  hash(...parts: Uint8Array[]): Uint8Array;
  hmac(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array;
}

function opensslHash(name: 'BLAKE2s' | 'SHA256', algorithm: string): NoiseHash {
  return {
    name,
    hashLen: 32,
    hash: (...parts) => {
      const h = createHash(algorithm);
      for (const p of parts) h.update(p);
      return h.digest();
    },
    hmac: (key, ...parts) => {
      const h = createHmac(algorithm, key);
      for (const p of parts) h.update(p);
      return h.digest();
    },
  };
}

export const BLAKE2S: NoiseHash = opensslHash('BLAKE2s', 'blake2s256');
export const SHA256: NoiseHash = opensslHash('SHA256', 'sha256');

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) { out.set(p, offset); offset += p.length; }
  return out;
}

const BYTE_1 = Uint8Array.of(1);
const BYTE_2 = Uint8Array.of(2);
const BYTE_3 = Uint8Array.of(3);

/**
 * HKDF as Noise §4.3 defines it (HMAC-based, 2 or 3 outputs of HASHLEN). The temporary key
 * is zeroed before returning; the caller zeroes the outputs once it has used them.
 */
export function hkdf(h: NoiseHash, chainingKey: Uint8Array, ikm: Uint8Array, outputs: 2 | 3): Uint8Array[] {
  const tempKey = h.hmac(chainingKey, ikm);
  const out1 = h.hmac(tempKey, BYTE_1);
  const out2 = h.hmac(tempKey, out1, BYTE_2);
  const result = [out1, out2];
  if (outputs === 3) result.push(h.hmac(tempKey, out2, BYTE_3));
  tempKey.fill(0);
  return result;
}

