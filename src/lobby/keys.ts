// The lobby's key schedule (docs/protocol/lobby.md "Keys"): everything comes from the
// invite's secret S by HKDF-SHA256 (RFC 5869) with a label, salted with relay key ‖ lobby
// id so that nothing made for one lobby or relay is accepted by another. The relay gets
// only the verifier, a separate HKDF output that reveals nothing about S.
import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { aeadDecrypt, aeadEncrypt, concatBytes, dh } from '../noise/crypto.js';
import type { PeerKey } from '../common/peer-key.js';
import { PROOF_LEN } from './records.js';

export const TAG_LEN = 16;
export const VERIFIER_LEN = 16;
export const BOX_SALT_LEN = 16;
export const BOX_TAG_LEN = 16;
export const BOX_OVERHEAD = BOX_SALT_LEN + BOX_TAG_LEN;

/** Record kinds: the first byte of a box's associated data, and the label of its key. */
export const KIND_ENTRY = 1;
export const KIND_CONFIRM = 2;
export type RecordKind = typeof KIND_ENTRY | typeof KIND_CONFIRM;
const BOX_LABEL: Record<RecordKind, string> = { [KIND_ENTRY]: 'entry box', [KIND_CONFIRM]: 'confirm box' };

const LABEL_PREFIX = 'mpyc-lobby/1 ';
const KEY_LEN = 32;

function hkdf(ikm: Uint8Array, salt: Uint8Array, info: string, extra: Uint8Array = new Uint8Array(0), len = KEY_LEN): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', ikm, salt, concatBytes(Buffer.from(LABEL_PREFIX + info, 'ascii'), extra), len));
}

function hmac16(key: Uint8Array, data: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac('sha256', key).update(data).digest().subarray(0, 16));
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The keys of one lobby, derived once from the invite. wipe() zeroes them. */
export class LobbyKeys {
  readonly verifier: Uint8Array;
  private readonly salt: Uint8Array;
  private readonly secret: Uint8Array;
  private readonly tagKey: Uint8Array;

  constructor(relayKey: PeerKey, readonly lobbyId: Uint8Array, secret: Uint8Array) {
    this.salt = concatBytes(relayKey.bytes, lobbyId);
    this.secret = new Uint8Array(secret);
    this.verifier = hkdf(this.secret, this.salt, 'verifier', undefined, VERIFIER_LEN);
    this.tagKey = hkdf(this.secret, this.salt, 'member tag');
  }

  /** A member's seat: the same on every run, unlinkable to the key without S. */
  tag(publicKey: Uint8Array): Uint8Array {
    return hmac16(this.tagKey, publicKey);
  }

  /** salt (16) ‖ ChaCha20-Poly1305 under a key of its own, nonce 0, AD = kind ‖ lobby id ‖ tag. */
  seal(kind: RecordKind, tag: Uint8Array, plaintext: Uint8Array): Uint8Array {
    const boxSalt = new Uint8Array(randomBytes(BOX_SALT_LEN));
    const key = hkdf(this.secret, this.salt, BOX_LABEL[kind], boxSalt);
    const sealed = aeadEncrypt(key, 0n, this.ad(kind, tag), plaintext);
    key.fill(0);
    return concatBytes(boxSalt, sealed);
  }

  /** The plaintext, or null when the box was not sealed with this lobby's S for this kind and seat. */
  open(kind: RecordKind, tag: Uint8Array, box: Uint8Array): Uint8Array | null {
    if (box.length < BOX_OVERHEAD || tag.length !== TAG_LEN) return null;
    const key = hkdf(this.secret, this.salt, BOX_LABEL[kind], box.subarray(0, BOX_SALT_LEN));
    const plain = aeadDecrypt(key, 0n, this.ad(kind, tag), box.subarray(BOX_SALT_LEN));
    key.fill(0);
    return plain && new Uint8Array(plain);
  }

  /** The pair key a member shares with another (X25519 of their static keys); throws on an unusable key. */
  pairKey(ownPrivateKey: Uint8Array, otherPublicKey: Uint8Array): Uint8Array {
    const shared = dh(ownPrivateKey, otherPublicKey);
    const key = hkdf(shared, this.salt, 'pair key');
    shared.fill(0);
    return key;
  }

  wipe(): void {
    this.secret.fill(0);
    this.tagKey.fill(0);
  }

  private ad(kind: RecordKind, tag: Uint8Array): Uint8Array {
    return concatBytes(Uint8Array.of(kind), this.lobbyId, tag);
  }
}

/**
 * Proof that the holder of `from`'s private key (or of `to`'s) confirmed the session text
 * with hash `fileHash`: only those two can compute their pair key.
 */
export function keyProof(pairKey: Uint8Array, fileHash: Uint8Array, from: Uint8Array, to: Uint8Array): Uint8Array {
  const proof = hmac16(pairKey, concatBytes(Buffer.from(`${LABEL_PREFIX}confirm`, 'ascii'), fileHash, from, to));
  return proof.subarray(0, PROOF_LEN);
}
