// The Noise framework (rev. 34) as this product uses it: IK and IKpsk2 over
// 25519 / ChaChaPoly / BLAKE2s or SHA256.
export { NoiseError } from './errors.js';
export { CipherState } from './cipher-state.js';
export { SymmetricState } from './symmetric-state.js';
export { HandshakeState, isSupportedProtocol, type HandshakeOptions } from './handshake-state.js';
export { generateKeyPair, publicKeyOf, dh, dhCounter, type KeyPair } from './crypto.js';
export { MAX_COUNTER } from './aead.js';

/** The agent↔agent and agent↔relay protocol name. */
export const PROTOCOL_NAME = 'Noise_IK_25519_ChaChaPoly_BLAKE2s';
