// The relay's registration handshake (Noise IK from src/noise, as the relay server and
// client use it) checked against the cacophony known-answer vectors.
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HandshakeState, publicKeyOf, NoiseError, generateKeyPair } from '../../src/noise/index.js';

const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
const kp = (priv: string): { publicKey: Uint8Array; privateKey: Uint8Array } => ({ privateKey: hex(priv), publicKey: publicKeyOf(hex(priv)) });

describe('registration handshake (Noise IK)', () => {
  const file = join(process.env.NOISE_VECTORS_DIR ?? join(import.meta.dirname, '../vectors/noise'), 'ik-cacophony.json');
  it('matches the cacophony Noise_IK_25519_ChaChaPoly_BLAKE2s vector (both messages, handshake hash)', () => {
    const all = JSON.parse(readFileSync(file, 'utf8')) as { vectors: Array<Record<string, unknown>> };
    const v = all.vectors.find((x) => x.protocol_name === 'Noise_IK_25519_ChaChaPoly_BLAKE2s') as Record<string, string> & { messages: Array<{ payload: string; ciphertext: string }> };
    expect(v).toBeDefined();
    const i = new HandshakeState({ protocolName: v.protocol_name, initiator: true, prologue: hex(v.init_prologue), staticKey: kp(v.init_static), ephemeralKey: kp(v.init_ephemeral), remoteStaticKey: hex(v.init_remote_static) });
    const r = new HandshakeState({ protocolName: v.protocol_name, initiator: false, prologue: hex(v.resp_prologue), staticKey: kp(v.resp_static), ephemeralKey: kp(v.resp_ephemeral) });
    const m1 = i.writeMessage(hex(v.messages[0]!.payload));
    expect(Buffer.from(m1).toString('hex')).toBe(v.messages[0]!.ciphertext);
    expect(Buffer.from(r.readMessage(m1)).toString('hex')).toBe(v.messages[0]!.payload);
    const m2 = r.writeMessage(hex(v.messages[1]!.payload));
    expect(Buffer.from(m2).toString('hex')).toBe(v.messages[1]!.ciphertext);
    expect(Buffer.from(i.readMessage(m2)).toString('hex')).toBe(v.messages[1]!.payload);
    expect(Buffer.from(i.handshakeHash()).toString('hex')).toBe(v.handshake_hash);
    expect(i.isComplete && r.isComplete).toBe(true);
  });

  it('a tampered message 2 throws NoiseError and the real one still completes', () => {
    const relay = generateKeyPair(), agent = generateKeyPair();
    const i = new HandshakeState({ protocolName: 'Noise_IK_25519_ChaChaPoly_BLAKE2s', initiator: true, prologue: new Uint8Array(1), staticKey: agent, remoteStaticKey: relay.publicKey });
    const r = new HandshakeState({ protocolName: 'Noise_IK_25519_ChaChaPoly_BLAKE2s', initiator: false, prologue: new Uint8Array(1), staticKey: relay });
    r.readMessage(i.writeMessage(new Uint8Array(0)));
    expect(Buffer.from(r.remoteStaticKey()!).equals(Buffer.from(agent.publicKey))).toBe(true);
    const m2 = r.writeMessage(new Uint8Array(4));
    const bad = new Uint8Array(m2); bad[40]! ^= 1;
    expect(() => i.readMessage(bad)).toThrow(NoiseError);
    expect(i.readMessage(m2).length).toBe(4);
  });

  it('a wrong prologue (cookie) fails the handshake', () => {
    const relay = generateKeyPair(), agent = generateKeyPair();
    const i = new HandshakeState({ protocolName: 'Noise_IK_25519_ChaChaPoly_BLAKE2s', initiator: true, prologue: new Uint8Array([1]), staticKey: agent, remoteStaticKey: relay.publicKey });
    const r = new HandshakeState({ protocolName: 'Noise_IK_25519_ChaChaPoly_BLAKE2s', initiator: false, prologue: new Uint8Array([2]), staticKey: relay });
    expect(() => r.readMessage(i.writeMessage(new Uint8Array(0)))).toThrow(NoiseError);
  });
});
