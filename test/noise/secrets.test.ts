// Handshake secrets do not outlive the handshake, on both sides, whether it completes or
// fails; a cached static-static DH saves the responder one DH per initiation and lets it
// refuse an unknown static key after one; messages handed over as Node Buffers (views into
// a received datagram) are read, never written.
import { describe, it, expect } from 'vitest';
import { HandshakeState, NoiseError, PROTOCOL_NAME, dh, dhCounter, generateKeyPair, type KeyPair } from '../../src/noise/index.js';

const prologue = new TextEncoder().encode('test');
const alice = generateKeyPair();
const bob = generateKeyPair();
const initiator = (opts: Partial<ConstructorParameters<typeof HandshakeState>[0]> = {}): HandshakeState =>
  new HandshakeState({ protocolName: PROTOCOL_NAME, initiator: true, prologue, staticKey: alice, remoteStaticKey: bob.publicKey, ...opts });
const responder = (opts: Partial<ConstructorParameters<typeof HandshakeState>[0]> = {}, s: KeyPair = bob): HandshakeState =>
  new HandshakeState({ protocolName: PROTOCOL_NAME, initiator: false, prologue, staticKey: s, ...opts });

const allZero = (bufs: Uint8Array[]): boolean => bufs.every((b) => b.every((x) => x === 0));
const anyNonZero = (bufs: Uint8Array[]): boolean => bufs.some((b) => b.some((x) => x !== 0));

/** Every secret buffer the state has held at any of the points where this is called. */
function collector(hs: HandshakeState): { grab(): void; readonly seen: Uint8Array[] } {
  const seen = new Set<Uint8Array>();
  return {
    grab: () => { for (const b of hs.secretBuffersForTest()) seen.add(b); },
    get seen() { return [...seen]; },
  };
}

describe('handshake secrets are zeroed', () => {
  it('after completion and destroy(), on both sides: ephemeral keys, ck, h, every cipher key used', () => {
    const i = initiator();
    const r = responder();
    const ci = collector(i);
    const cr = collector(r);
    ci.grab(); cr.grab();
    const m1 = i.writeMessage(new Uint8Array([1]));
    ci.grab();
    r.readMessage(m1);
    cr.grab();
    const m2 = r.writeMessage(new Uint8Array(0));
    cr.grab();
    i.readMessage(m2);
    ci.grab();
    expect(anyNonZero(ci.seen) && anyNonZero(cr.seen)).toBe(true);
    const a = i.split();
    const b = r.split();
    i.destroy();
    r.destroy();
    expect(allZero(ci.seen)).toBe(true);
    expect(allZero(cr.seen)).toBe(true);
    // the transport keys it produced are independent of the zeroed state
    const ct = a.send.encryptWithNonce(0, new Uint8Array(0), new Uint8Array([7]));
    expect(Array.from(b.receive.decryptWithNonce(0, new Uint8Array(0), ct)!)).toEqual([7]);
    expect(() => i.writeMessage(new Uint8Array(0))).toThrow(NoiseError);
    expect(() => r.readMessage(m1)).toThrow(NoiseError);
  });

  it('the ephemeral private keys are zeroed as soon as the last DH is done, before destroy()', () => {
    const i = initiator();
    const r = responder();
    const m1 = i.writeMessage(new Uint8Array(0));
    const iEphemeral = i.secretBuffersForTest()[0]!;
    r.readMessage(m1);
    const m2 = r.writeMessage(new Uint8Array(0));
    expect(r.secretBuffersForTest()[0]!.every((x) => x === 0)).toBe(true);
    expect(iEphemeral.some((x) => x !== 0)).toBe(true);
    i.readMessage(m2);
    expect(iEphemeral.every((x) => x === 0)).toBe(true);
  });

  it('after a failed handshake and destroy(), on both sides', () => {
    const i = initiator();
    const ci = collector(i);
    const m1 = i.writeMessage(new Uint8Array(0));
    ci.grab();
    const wrong = responder({}, generateKeyPair());
    const cw = collector(wrong);
    cw.grab();
    expect(() => wrong.readMessage(m1)).toThrow(NoiseError);
    cw.grab();
    const r = responder();
    r.readMessage(m1);
    const m2 = r.writeMessage(new Uint8Array(0));
    const bad = new Uint8Array(m2);
    bad[40]! ^= 1;
    expect(() => i.readMessage(bad)).toThrow(NoiseError);
    ci.grab();
    expect(anyNonZero(ci.seen)).toBe(true);
    i.destroy();
    wrong.destroy();
    expect(allZero(ci.seen)).toBe(true);
    expect(allZero(cw.seen)).toBe(true);
  });
});

describe('staticDh: the cached static-static DH', () => {
  it('gives the same handshake as computing it, one DH fewer on each side', () => {
    const ssBob = dh(bob.privateKey, alice.publicKey);
    const ssAlice = dh(alice.privateKey, bob.publicKey);
    const fixedE = { i: generateKeyPair(), r: generateKeyPair() };
    const run = (cached: boolean): { hash: string; initiatorDh: number; responderDh: number } => {
      const i = initiator({ ephemeralKey: fixedE.i, staticDh: cached ? () => ssAlice : undefined });
      const r = responder({ ephemeralKey: fixedE.r, staticDh: cached ? () => ssBob : undefined });
      let d0 = dhCounter.operations;
      const m1 = i.writeMessage(new Uint8Array(0));
      const initiatorDh = dhCounter.operations - d0;
      d0 = dhCounter.operations;
      r.readMessage(m1);
      const responderDh = dhCounter.operations - d0;
      i.readMessage(r.writeMessage(new Uint8Array(0)));
      return { hash: Buffer.from(i.handshakeHash()).toString('hex'), initiatorDh, responderDh };
    };
    const computed = run(false);
    const cached = run(true);
    expect(cached.hash).toBe(computed.hash);
    expect([computed.initiatorDh, computed.responderDh]).toEqual([2, 2]);
    expect([cached.initiatorDh, cached.responderDh]).toEqual([1, 1]);
    expect(ssBob.some((x) => x !== 0)).toBe(true); // the cache's buffer is left alone
  });

  it('refusing the remote static key fails the read after one DH (es), before the ss DH', () => {
    const m1 = initiator().writeMessage(new Uint8Array(0));
    let offered: Uint8Array | undefined;
    const r = responder({ staticDh: (rs) => { offered = rs; return undefined; } });
    const d0 = dhCounter.operations;
    expect(() => r.readMessage(m1)).toThrow(/refused/);
    expect(dhCounter.operations - d0).toBe(1);
    expect(Buffer.from(offered!).equals(Buffer.from(alice.publicKey))).toBe(true);
  });
});

describe('messages as Node Buffers', () => {
  it('are read without being modified (Buffer.slice is a view) and complete the handshake', () => {
    const i = initiator();
    const r = responder();
    const m1 = Buffer.from(i.writeMessage(new Uint8Array([1, 2])));
    const m1Copy = Buffer.from(m1);
    expect(Array.from(r.readMessage(m1))).toEqual([1, 2]);
    const m2 = Buffer.from(r.writeMessage(new Uint8Array(0)));
    const m2Copy = Buffer.from(m2);
    i.readMessage(m2);
    r.destroy();
    i.destroy();
    expect(m1.equals(m1Copy) && m2.equals(m2Copy)).toBe(true);
  });
});
