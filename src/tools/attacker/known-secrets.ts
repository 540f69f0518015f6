// Row 11 (memory disclosure): registrations with the relay whose handshake secrets the
// attacker knows, so that a test can look for them in the relay process's memory
// afterwards (a core dump, swap, or a local user reading /proc/<pid>/mem would find them
// there unless the relay zeroes its handshake state). Both ends of a Noise handshake hold
// the same Diffie-Hellman results; with its own ephemeral key fixed (the real
// HandshakeState's option for test vectors) the initiator can compute each of them.
import { HandshakeState, dh, generateKeyPair } from '../../noise/index.js';
import { PeerKey } from '../../common/peer-key.js';
import { FRAME_REGISTERED, NOISE_PROTOCOL, encodeRegister, registrationPrologue } from '../../relay/wire.js';
import type { Endpoint } from './raw-udp.js';
import { bindUdp } from './spoof-attacks.js';
import { fetchCookie, nextFrame } from './stranger-attacks.js';

/** IK message 2 starts with the responder's ephemeral public key; REGISTERED has a 4-byte header */
const REGISTERED_HEADER = 4;
const DH_LEN = 32;

/**
 * `count` registrations, each with a fresh static and ephemeral key. Returns, per completed
 * registration, the relay side's DH results of that handshake (es, ee, se: the ones that
 * involve an ephemeral key) as hex.
 */
export async function registerWithKnownSecrets(o: { relay: Endpoint; relayKey: string; count: number }): Promise<{ registered: number; secrets: string[] }> {
  const relayKey = PeerKey.fromText(o.relayKey).bytes;
  const sock = await bindUdp('127.0.0.4');
  const secrets: string[] = [];
  let registered = 0;
  try {
    for (let i = 0; i < o.count; i++) {
      const cookie = await fetchCookie(sock, o.relay);
      if (!cookie) continue;
      const s = generateKeyPair();
      const e = generateKeyPair();
      const hs = new HandshakeState({ protocolName: NOISE_PROTOCOL, initiator: true, prologue: registrationPrologue(cookie), staticKey: s, remoteStaticKey: relayKey, ephemeralKey: e });
      const answer = nextFrame(sock, FRAME_REGISTERED, 2000);
      sock.send(encodeRegister(cookie, hs.writeMessage(new Uint8Array(0))), o.relay.port, o.relay.address);
      const reg = await answer;
      if (!reg) continue;
      const msg2 = new Uint8Array(reg.subarray(REGISTERED_HEADER));
      try { hs.readMessage(msg2); } catch { continue; }
      registered++;
      const re = msg2.subarray(0, DH_LEN);
      for (const secret of [dh(e.privateKey, relayKey), dh(e.privateKey, re), dh(s.privateKey, re)]) secrets.push(Buffer.from(secret).toString('hex'));
    }
  } finally {
    sock.close();
  }
  return { registered, secrets };
}
