// Lobbies on an in-process relay: invites, members, and a `send` that a test can tamper with.
import { randomBytes } from 'node:crypto';
import { PeerKey } from '../../src/common/peer-key.js';
import { generateKeyPair, type KeyPair } from '../../src/noise/index.js';
import { LobbyClient } from '../../src/lobby/client.js';
import type { Invite } from '../../src/lobby/invite.js';
import { LobbyKeys } from '../../src/lobby/keys.js';
import { joinLobby, type JoinOptions, type JoinResult, type Progress } from '../../src/lobby/join.js';
import { OP_CREATE, STATUS, type Request, type Response } from '../../src/lobby/wire.js';
import type { Relay } from '../relay/helpers.js';

export function inviteFor(relay: Relay, parties: number, over: Partial<Invite> = {}): Invite {
  const relayKey = PeerKey.fromBytes(relay.key.publicKey);
  return {
    relay: { publicKey: relayKey.text, host: '127.0.0.1', udpPort: relay.udpPort, httpPort: relay.httpPort }, relayKey,
    lobbyId: new Uint8Array(randomBytes(16)), secret: new Uint8Array(randomBytes(16)), parties, basePort: 11365, ...over,
  };
}

/** What `mpyc-agent invite create` does: CREATE with the verifier of the invite's secret. */
export async function openLobby(inv: Invite, capacity = inv.parties): Promise<Response> {
  const keys = new LobbyKeys(inv.relayKey, inv.lobbyId, inv.secret);
  const r = await new LobbyClient(inv.relay).send({ op: OP_CREATE, lobbyId: inv.lobbyId, capacity, ttlS: 0, verifier: keys.verifier });
  if (r.status !== STATUS.CREATED) throw new Error(`CREATE: status ${r.status}`);
  return r;
}

export type Send = (req: Request) => Promise<Response>;
export const honest = (inv: Invite): Send => { const c = new LobbyClient(inv.relay); return (req) => c.send(req); };

export interface Joiner { name: string; keyPair: KeyPair; progress: Progress[] }
export const joiner = (name: string): Joiner => ({ name, keyPair: generateKeyPair(), progress: [] });

/** Runs one member's join; the invite is copied because joinLobby's caller owns (and zeroes) its secret. */
export function join(inv: Invite, j: Joiner, extra: Partial<JoinOptions> = {}): Promise<JoinResult> {
  return joinLobby({
    invite: { ...inv, secret: new Uint8Array(inv.secret) }, keyPair: j.keyPair, name: j.name, send: honest(inv), pollMs: 50,
    timeoutMs: 15_000, onProgress: (p) => j.progress.push(p), ...extra,
  });
}
