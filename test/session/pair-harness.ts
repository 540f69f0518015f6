// Two SessionManagers with string endpoints, wired by hand: what each transmits waits, as
// the very view it was given, in its `out` list until the test hands it over; what b
// delivers is kept. The clock moves only with advance(), which also runs both timers.
import { generateKeyPair } from '../../src/noise/index.js';
import { PeerKey } from '../../src/common/peer-key.js';
import { SessionManager } from '../../src/session/index.js';

export interface ManagerPair {
  a: SessionManager<string>;
  b: SessionManager<string>;
  aOut: Uint8Array[];
  bOut: Uint8Array[];
  /** plaintexts b delivered, as given to deliver() */
  delivered: Uint8Array[];
  aKey: PeerKey;
  bKey: PeerKey;
  advance(ms: number): void;
}

export function managerPair(): ManagerPair {
  let now = 1_000;
  const ka = generateKeyPair();
  const kb = generateKeyPair();
  const aKey = PeerKey.fromBytes(ka.publicKey);
  const bKey = PeerKey.fromBytes(kb.publicKey);
  const aOut: Uint8Array[] = [];
  const bOut: Uint8Array[] = [];
  const delivered: Uint8Array[] = [];
  const clock = (): number => now;
  const a = new SessionManager<string>({ clock, staticKey: ka, peers: [bKey], transmit: (_p, packet) => aOut.push(packet), deliver: () => {} });
  const b = new SessionManager<string>({ clock, staticKey: kb, peers: [aKey], transmit: (_p, packet) => bOut.push(packet), deliver: (_p, pt) => delivered.push(pt) });
  return { a, b, aOut, bOut, delivered, aKey, bKey, advance: (ms) => { now += ms; a.tick(now); b.tick(now); } };
}
