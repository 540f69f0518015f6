// Behaviour of the Noise layer on bad input: every failure is a NoiseError (or null on
// the datagram path), never another exception, and never a changed state.
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { HandshakeState, MAX_COUNTER, NoiseError, PROTOCOL_NAME, generateKeyPair, type KeyPair } from '../../src/noise/index.js';

const prologue = new TextEncoder().encode('test');
const initiatorFor = (s: KeyPair, r: KeyPair): HandshakeState =>
  new HandshakeState({ protocolName: PROTOCOL_NAME, initiator: true, prologue, staticKey: s, remoteStaticKey: r.publicKey });
const responderFor = (r: KeyPair): HandshakeState =>
  new HandshakeState({ protocolName: PROTOCOL_NAME, initiator: false, prologue, staticKey: r });

// Curve25519 points of small order (all-zero and order-8 points), from the X25519 literature.
const lowOrderPoints = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
  '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
].map((h) => new Uint8Array(Buffer.from(h, 'hex')));

describe('Noise IK handshake hardening', () => {
  const alice = generateKeyPair();
  const bob = generateKeyPair();

  it('a low-order remote static key fails the handshake with a NoiseError', () => {
    for (const point of lowOrderPoints) {
      const hs = new HandshakeState({ protocolName: PROTOCOL_NAME, initiator: true, prologue, staticKey: alice, remoteStaticKey: point });
      expect(() => hs.writeMessage(new Uint8Array(0))).toThrow(NoiseError);
    }
  });

  it('a low-order ephemeral key in message 1 is rejected cleanly and the responder still accepts the genuine message', () => {
    const genuine = initiatorFor(alice, bob).writeMessage(new Uint8Array([1, 2, 3]));
    const responder = responderFor(bob);
    for (const point of lowOrderPoints) {
      const forged = new Uint8Array(genuine);
      forged.set(point, 0);
      expect(() => responder.readMessage(forged)).toThrow(NoiseError);
    }
    expect(Array.from(responder.readMessage(genuine))).toEqual([1, 2, 3]);
  });

  it('any single bit flip or truncation of either handshake message is rejected without changing state', () => {
    const i = initiatorFor(alice, bob);
    const r = responderFor(bob);
    const m1 = i.writeMessage(new Uint8Array([9]));
    fc.assert(fc.property(fc.integer({ min: 0, max: m1.length * 8 - 1 }), (bit) => {
      const bad = new Uint8Array(m1);
      bad[bit >> 3]! ^= 1 << (bit & 7);
      expect(() => r.readMessage(bad)).toThrow(NoiseError);
    }), { numRuns: 200 });
    for (let len = 0; len < m1.length; len += 7) expect(() => r.readMessage(m1.subarray(0, len))).toThrow(NoiseError);
    r.readMessage(m1);
    const m2 = r.writeMessage(new Uint8Array(0));
    fc.assert(fc.property(fc.integer({ min: 0, max: m2.length * 8 - 1 }), (bit) => {
      const bad = new Uint8Array(m2);
      bad[bit >> 3]! ^= 1 << (bit & 7);
      expect(() => i.readMessage(bad)).toThrow(NoiseError);
    }), { numRuns: 200 });
    i.readMessage(m2);
    expect(i.isComplete && r.isComplete).toBe(true);
    expect(Buffer.from(i.handshakeHash()).equals(Buffer.from(r.handshakeHash()))).toBe(true);
  });

  it('a responder learns the initiator key; a wrong responder key cannot read message 1', () => {
    const r = responderFor(bob);
    r.readMessage(initiatorFor(alice, bob).writeMessage(new Uint8Array(0)));
    expect(Buffer.from(r.remoteStaticKey()!).equals(Buffer.from(alice.publicKey))).toBe(true);
    const mallory = responderFor(generateKeyPair());
    expect(() => mallory.readMessage(initiatorFor(alice, bob).writeMessage(new Uint8Array(0)))).toThrow(NoiseError);
  });

  it('transport: random payloads round-trip with explicit nonces; bit flips and wrong nonces give null', () => {
    const i = initiatorFor(alice, bob);
    const r = responderFor(bob);
    r.readMessage(i.writeMessage(new Uint8Array(0)));
    i.readMessage(r.writeMessage(new Uint8Array(0)));
    const a = i.split();
    const b = r.split();
    const ad = new Uint8Array(0);
    fc.assert(fc.property(fc.uint8Array({ maxLength: 1400 }), fc.integer({ min: 0, max: MAX_COUNTER - 1 }), fc.nat(), (payload, n, flip) => {
      const ct = a.send.encryptWithNonce(n, ad, payload);
      expect(Buffer.from(b.receive.decryptWithNonce(n, ad, ct)!).equals(Buffer.from(payload))).toBe(true);
      expect(b.receive.decryptWithNonce(n + 1, ad, ct)).toBeNull();
      const bad = new Uint8Array(ct);
      bad[flip % bad.length]! ^= 0x80;
      expect(b.receive.decryptWithNonce(n, ad, bad)).toBeNull();
      expect(b.receive.decryptWithNonce(n, ad, ct.subarray(0, ct.length - 1))).toBeNull();
    }), { numRuns: 300 });
  });

  it('a failed decryptWithAd leaves the counter unchanged; destroy() zeroes and disables the key', () => {
    const i = initiatorFor(alice, bob);
    const r = responderFor(bob);
    r.readMessage(i.writeMessage(new Uint8Array(0)));
    i.readMessage(r.writeMessage(new Uint8Array(0)));
    const a = i.split();
    const b = r.split();
    const ct = a.send.encryptWithAd(new Uint8Array(0), new Uint8Array([42]));
    const bad = new Uint8Array(ct);
    bad[0]! ^= 1;
    expect(() => b.receive.decryptWithAd(new Uint8Array(0), bad)).toThrow(NoiseError);
    expect(b.receive.nonce).toBe(0);
    expect(Array.from(b.receive.decryptWithAd(new Uint8Array(0), ct))).toEqual([42]);
    b.receive.destroy();
    expect(b.receive.hasKey()).toBe(false);
    expect(b.receive.decryptWithNonce(0, new Uint8Array(0), ct)).toBeNull();
  });
});
