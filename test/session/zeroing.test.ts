// Every handshake state the SessionManager creates is zeroed (ephemeral keys, ck, h, the
// cipher key) when the handshake completes or fails, on both sides: the test collects the
// HandshakeState objects the managers use and reads their buffers afterwards.
import { describe, it, expect, vi, afterEach } from 'vitest';
import { HandshakeState } from '../../src/noise/index.js';
import { computeMac, mac1Key } from '../../src/session/mac.js';
import { INITIATION_LEN, MAC_LEN, MSG_INITIATION, MSG_RESPONSE } from '../../src/session/wire.js';
import { managerPair } from './pair-harness.js';

afterEach(() => { vi.restoreAllMocks(); });

/** The HandshakeState objects used (written or read) while fn runs, with the buffers each held. */
function watchHandshakes(fn: () => void): Map<HandshakeState, Uint8Array[]> {
  const seen = new Map<HandshakeState, Set<Uint8Array>>();
  const note = (hs: HandshakeState): void => {
    const set = seen.get(hs) ?? new Set();
    for (const b of hs.secretBuffersForTest()) set.add(b);
    seen.set(hs, set);
  };
  const write = HandshakeState.prototype.writeMessage;
  const read = HandshakeState.prototype.readMessage;
  vi.spyOn(HandshakeState.prototype, 'writeMessage').mockImplementation(function (this: HandshakeState, payload) {
    note(this);
    try { return write.call(this, payload); } finally { note(this); }
  });
  vi.spyOn(HandshakeState.prototype, 'readMessage').mockImplementation(function (this: HandshakeState, message) {
    note(this);
    try { return read.call(this, message); } finally { note(this); }
  });
  fn();
  vi.restoreAllMocks();
  return new Map([...seen].map(([hs, set]) => [hs, [...set]]));
}

const zeroed = (bufs: Uint8Array[]): boolean => bufs.every((b) => b.every((x) => x === 0));

describe('SessionManager zeroes every handshake state', () => {
  it('when the handshake completes: the initiator\'s and the responder\'s, without close()', () => {
    const { a, b, aOut, bOut, bKey } = managerPair();
    const states = watchHandshakes(() => {
      a.connect(bKey);
      b.receive(aOut.shift()!, 'a');
      a.receive(bOut.shift()!, 'b');
    });
    expect(a.info(bKey).established).toBe(true);
    expect(states.size).toBe(2);
    for (const bufs of states.values()) {
      expect(bufs.length).toBeGreaterThan(2);
      expect(zeroed(bufs)).toBe(true);
    }
  });

  it('when it fails: a forged or replayed initiation (responder), an abandoned or timed-out initiation (initiator)', () => {
    const { a, b, aOut, bOut, bKey, advance: tick } = managerPair();
    const states = watchHandshakes(() => {
      // responder: a mac1-valid forgery fails inside Noise
      const forged = new Uint8Array(INITIATION_LEN);
      forged[0] = MSG_INITIATION;
      forged.fill(9, 8, INITIATION_LEN - 2 * MAC_LEN);
      forged.set(computeMac(mac1Key(bKey.bytes), forged.subarray(0, INITIATION_LEN - 2 * MAC_LEN)), INITIATION_LEN - 2 * MAC_LEN);
      expect(b.receive(forged, 'x')).toMatchObject({ reason: 'handshake_failed' });
      // initiator: an unanswered initiation replaced by a retry, then one given up after 90 s
      a.connect(bKey);
      const stale = aOut.shift()!;
      tick(1_100); // retry: the first state is abandoned
      b.receive(aOut.shift()!, 'a'); // accepted (the answer is lost)
      bOut.length = 0;
      tick(25);
      // responder: the older initiation is refused by its timestamp after one DH
      expect(b.receive(stale, 'a')).toMatchObject({ reason: 'replayed_initiation' });
      for (let t = 0; t < 100; t++) { tick(1_000); aOut.length = 0; }
    });
    expect(a.info(bKey).handshakePending).toBe(false); // given up
    expect(states.size).toBeGreaterThanOrEqual(5);
    for (const bufs of states.values()) expect(zeroed(bufs)).toBe(true);
  });

  it('a forged response leaves the pending initiation usable (rolled back); close() then zeroes it', () => {
    const { a, b, aOut, bOut, aKey, bKey } = managerPair();
    const states = watchHandshakes(() => {
      a.connect(bKey);
      b.receive(aOut.shift()!, 'a');
      const response = bOut.shift()!;
      expect(response[0]).toBe(MSG_RESPONSE);
      const bad = new Uint8Array(response);
      bad[40]! ^= 1; // inside the Noise part; mac1 (keyed by a's public key) made anew, so Noise must catch it
      bad.set(computeMac(mac1Key(aKey.bytes), bad.subarray(0, 60)), 60);
      expect(a.receive(bad, 'b')).toMatchObject({ reason: 'handshake_failed' });
    });
    const [initiator] = [...states].find(([, bufs]) => !zeroed(bufs)) ?? [];
    expect(initiator).toBeDefined(); // still pending: not zeroed
    a.close();
    for (const bufs of states.values()) expect(zeroed(bufs)).toBe(true);
  });
});
