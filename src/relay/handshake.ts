// The Noise IK handshake used for relay registration comes from src/noise; this module
// keeps the relay's import path stable.
export { HandshakeState, NoiseError, generateKeyPair, publicKeyOf, type KeyPair, type HandshakeOptions } from '../noise/index.js';
