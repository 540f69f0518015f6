// Authenticated control frames between the two ends of one registration handshake.
import { describe, it, expect } from 'vitest';
import { HandshakeState, generateKeyPair } from '../../src/noise/index.js';
import { controlKeysOf } from '../../src/relay/control-auth.js';
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
    const f = relay.send.seal(FRAME_PEER_GONE, new Uint8Array(32).fill(3));
    expect(agent.receive.open(auth(f))).toBe(true);
    expect(agent.receive.open(auth(f))).toBe(false); // replay
    const g = relay.send.seal(FRAME_RESTARTING);
    const bad = Buffer.from(g); bad[5]! ^= 1; // counter changed: tag over it fails
    expect(agent.receive.open(auth(bad))).toBe(false);
    const flipped = Buffer.from(g); flipped[flipped.length - 1]! ^= 1;
    expect(agent.receive.open(auth(flipped))).toBe(false);
    expect(relay.receive.open(auth(g))).toBe(false); // relay->agent key is not agent->relay
    expect(agent.receive.open(auth(g))).toBe(true); // the failures did not advance anything
  });

  it('a frame from another registration (other keys) fails', () => {
    const a = pair(), b = pair();
    expect(a.agent.receive.open(auth(b.relay.send.seal(FRAME_RESTARTING)))).toBe(false);
  });

  it('older counters are refused after a newer one was accepted (reordered stale frames)', () => {
    const { agent, relay } = pair();
    const f1 = relay.send.seal(FRAME_RESTARTING), f2 = relay.send.seal(FRAME_RESTARTING);
    expect(agent.receive.open(auth(f2))).toBe(true);
    expect(agent.receive.open(auth(f1))).toBe(false);
  });

  it('controlKeysOf zeroes the handshake: ephemeral private key and chaining key', () => {
    const { hs } = pair();
    for (const h of hs) {
      const inner = h as unknown as { e: { privateKey: Uint8Array }; ss: { ck: Uint8Array } };
      expect(inner.e.privateKey.every((x) => x === 0)).toBe(true);
      expect(inner.ss.ck.every((x) => x === 0)).toBe(true);
    }
  });
});
