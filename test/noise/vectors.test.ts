// Runs every *.json vector file in NOISE_VECTORS_DIR (default test/vectors/noise, see its README):
// both sides replay the handshake with the fixed keys, every handshake and transport
// message must match byte for byte, and the handshake hash where the vector gives one.
import { describe, it, expect } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { HandshakeState, isSupportedProtocol, publicKeyOf, type CipherState } from '../../src/noise/index.js';

interface Vector {
  protocol_name: string;
  init_prologue: string;
  init_static?: string;
  init_ephemeral: string;
  init_remote_static?: string;
  init_psks?: string[];
  resp_prologue: string;
  resp_static?: string;
  resp_ephemeral: string;
  resp_psks?: string[];
  handshake_hash?: string;
  messages: { payload: string; ciphertext: string }[];
}

const dir = resolve(process.env.NOISE_VECTORS_DIR ?? join(import.meta.dirname, '../vectors/noise'));
const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const pair = (priv: string) => { const privateKey = hex(priv); return { privateKey, publicKey: publicKeyOf(privateKey) }; };

const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();

describe(`Noise vectors in ${dir}`, () => {
  it('the directory holds at least one vector file', () => {
    expect(files.length).toBeGreaterThan(0);
  });

  for (const file of files) {
    const vectors = (JSON.parse(readFileSync(join(dir, file), 'utf8')) as { vectors: Vector[] }).vectors;
    vectors.forEach((v, idx) => {
      const supported = isSupportedProtocol(v.protocol_name);
      it.skipIf(!supported)(`${file} #${idx} ${v.protocol_name}${supported ? '' : ' (protocol not supported: skipped)'}`, () => {
        const initiator = new HandshakeState({
          protocolName: v.protocol_name, initiator: true, prologue: hex(v.init_prologue),
          staticKey: pair(v.init_static!), ephemeralKey: pair(v.init_ephemeral),
          remoteStaticKey: hex(v.init_remote_static!), psk: v.init_psks?.[0] ? hex(v.init_psks[0]) : undefined,
        });
        const responder = new HandshakeState({
          protocolName: v.protocol_name, initiator: false, prologue: hex(v.resp_prologue),
          staticKey: pair(v.resp_static!), ephemeralKey: pair(v.resp_ephemeral),
          psk: v.resp_psks?.[0] ? hex(v.resp_psks[0]) : undefined,
        });
        let initCiphers: { send: CipherState; receive: CipherState } | undefined;
        let respCiphers: { send: CipherState; receive: CipherState } | undefined;
        v.messages.forEach((msg, i) => {
          const fromInitiator = i % 2 === 0;
          const payload = hex(msg.payload);
          let wire: Uint8Array;
          let received: Uint8Array;
          if (i < 2) {
            const [w, r] = fromInitiator ? [initiator, responder] : [responder, initiator];
            wire = w.writeMessage(payload);
            received = r.readMessage(wire);
            if (i === 1) {
              initCiphers = initiator.split();
              respCiphers = responder.split();
              if (v.handshake_hash) {
                expect(toHex(initiator.handshakeHash()), 'handshake hash (initiator)').toBe(v.handshake_hash);
                expect(toHex(responder.handshakeHash()), 'handshake hash (responder)').toBe(v.handshake_hash);
              }
            }
          } else {
            const [w, r] = fromInitiator ? [initCiphers!, respCiphers!] : [respCiphers!, initCiphers!];
            wire = w.send.encryptWithAd(new Uint8Array(0), payload);
            received = r.receive.decryptWithAd(new Uint8Array(0), wire);
          }
          expect(toHex(wire), `message ${i} ciphertext`).toBe(msg.ciphertext);
          expect(toHex(received), `message ${i} payload`).toBe(msg.payload);
        });
        expect(initiator.isComplete && responder.isComplete).toBe(true);
      });
    });
  }
});
