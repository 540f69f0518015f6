// Authenticated control frames between the two ends of one registration handshake.
import { describe, it, expect } from 'vitest';
import { HandshakeState, generateKeyPair } from '../../src/noise/index.js';
import { controlKeysInUse, controlKeysOf } from '../../src/relay/control-auth.js';
import { KeySlab } from '../../src/relay/key-slab.js';
import { FRAME_PEER_GONE, FRAME_RESTARTING, NOISE_PROTOCOL, decodeFrame, type RelayFrame } from '../../src/relay/wire.js';

function pair(): { agent: ReturnType<typeof controlKeysOf>; relay: ReturnType<typeof controlKeysOf>; hs: HandshakeState[] } {
  const rk = generateKeyPair(), ak = generateKeyPair();
  const i = new HandshakeState({ protocolName: NOISE_PROTOCOL, initiator: true, prologue: new Uint8Array(1), staticKey: ak, remoteStaticKey: rk.publicKey });
  const r = new HandshakeState({ protocolName: NOISE_PROTOCOL, initiator: false, prologue: new Uint8Array(1), staticKey: rk });
  r.readMessage(i.writeMessage(new Uint8Array(0)));
  i.readMessage(r.writeMessage(new Uint8Array(6)));
  return { relay: controlKeysOf(r), agent: controlKeysOf(i), hs: [i, r] };
}

const auth = (f: Uint8Array): Extract<RelayFrame, { counter: number }> => {
  const d = decodeFrame(f);
  if (!d.ok || !('counter' in d.frame)) throw new Error('not an authenticated frame');
  return d.frame;
};

describe('control frame authentication', () => {
  it('a sealed frame opens once on the other side; replays, tampering and the wrong direction fail', () => {
    const { agent, relay } = pair();
    const f = relay.seal(FRAME_PEER_GONE, new Uint8Array(32).fill(3));
    expect(agent.open(auth(f))).toBe(true);
    expect(agent.open(auth(f))).toBe(false); // replay
    const g = relay.seal(FRAME_RESTARTING);
    const bad = Buffer.from(g); bad[5]! ^= 1; // counter changed: tag over it fails
    expect(agent.open(auth(bad))).toBe(false);
    const flipped = Buffer.from(g); flipped[flipped.length - 1]! ^= 1;
    expect(agent.open(auth(flipped))).toBe(false);
    expect(relay.open(auth(g))).toBe(false); // relay->agent key is not agent->relay
    expect(agent.open(auth(g))).toBe(true); // the failures did not advance anything
  });

  it('a frame from another registration (other keys) fails', () => {
    const a = pair(), b = pair();
    expect(a.agent.open(auth(b.relay.seal(FRAME_RESTARTING)))).toBe(false);
  });

  it('older counters are refused after a newer one was accepted (reordered stale frames)', () => {
    const { agent, relay } = pair();
    const f1 = relay.seal(FRAME_RESTARTING), f2 = relay.seal(FRAME_RESTARTING);
    expect(agent.open(auth(f2))).toBe(true);
    expect(agent.open(auth(f1))).toBe(false);
  });

  it('controlKeysOf zeroes the handshake: ephemeral private key and chaining key', () => {
    const { hs } = pair();
    for (const h of hs) {
      const inner = h as unknown as { e: { privateKey: Uint8Array }; ss: { ck: Uint8Array } };
      expect(inner.e.privateKey.every((x) => x === 0)).toBe(true);
      expect(inner.ss.ck.every((x) => x === 0)).toBe(true);
    }
  });

  it('destroy() zeroes both keys and gives the slot back; destroyed keys neither seal nor open', () => {
    const before = controlKeysInUse();
    const { agent, relay } = pair();
    expect(controlKeysInUse()).toBe(before + 2);
    const slot = (agent as unknown as { keys: Uint8Array }).keys;
    expect(slot.length).toBe(64);
    expect(slot.some((x) => x !== 0)).toBe(true);
    const f = relay.seal(FRAME_RESTARTING);
    agent.destroy();
    expect(slot.every((x) => x === 0)).toBe(true);
    expect(agent.open(auth(f))).toBe(false);
    expect(() => agent.seal(FRAME_RESTARTING)).toThrow(/destroyed/);
    agent.destroy(); // idempotent: the slot is not given back twice
    relay.destroy();
    expect(controlKeysInUse()).toBe(before);
  });
});

describe('HandshakeState.splitInto', () => {
  it('writes the same keys as split(), from each side\'s point of view', () => {
    const rk = generateKeyPair(), ak = generateKeyPair(), ie = generateKeyPair(), re = generateKeyPair();
    const twins = (): HandshakeState[] => {
      const i = new HandshakeState({ protocolName: NOISE_PROTOCOL, initiator: true, prologue: new Uint8Array(1), staticKey: ak, ephemeralKey: ie, remoteStaticKey: rk.publicKey });
      const r = new HandshakeState({ protocolName: NOISE_PROTOCOL, initiator: false, prologue: new Uint8Array(1), staticKey: rk, ephemeralKey: re });
      r.readMessage(i.writeMessage(new Uint8Array(0)));
      i.readMessage(r.writeMessage(new Uint8Array(6)));
      return [i, r];
    };
    const [i1, r1] = twins(), [i2, r2] = twins();
    for (const [viaSplit, viaInto] of [[i1!, i2!], [r1!, r2!]] as const) {
      const { send, receive } = viaSplit.split();
      const s = new Uint8Array(32), r = new Uint8Array(32);
      viaInto.splitInto(s, r);
      expect(Buffer.from(s)).toEqual(Buffer.from(send.keyBufferForTest()!));
      expect(Buffer.from(r)).toEqual(Buffer.from(receive.keyBufferForTest()!));
      expect(Buffer.from(s)).not.toEqual(Buffer.from(r));
    }
  });
});

describe('key slab', () => {
  it('hands out zeroed, disjoint slots across chunks, and reuses a released slot zeroed', () => {
    const slab = new KeySlab(64, 4);
    const slots = Array.from({ length: 10 }, () => slab.alloc());
    expect(slab.inUse).toBe(10);
    slots.forEach((s, i) => { expect(s.every((x) => x === 0)).toBe(true); s.fill(i + 1); });
    // writing one slot never touched another
    slots.forEach((s, i) => expect(s.every((x) => x === i + 1)).toBe(true));
    slab.release(slots[3]!);
    expect(slots[3]!.every((x) => x === 0)).toBe(true);
    const again = slab.alloc();
    expect(again).toBe(slots[3]);
    expect(slab.inUse).toBe(10);
  });
});

