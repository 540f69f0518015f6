// The roster rule (docs/protocol/lobby.md "The roster rule"): from the members' sealed
// entries to the one session file text every member writes. It reads nothing the relay
// can change — order by each member's sealed joinedAt, ties by key — so the relay cannot
// influence indices; names are made unique deterministically so the file is valid.
import { createHash } from 'node:crypto';
import { MAX_NAME_LENGTH, parseSessionFile, serializeSession } from '../agent/session-file.js';
import { PeerKey } from '../common/peer-key.js';
import { base32Encode } from './base32.js';
import type { LobbyRelay } from './invite.js';
import type { EntryPlain } from './records.js';

export interface Member extends EntryPlain {
  key: PeerKey;
  tag: Uint8Array;
}

export interface Roster {
  /** members in index order */
  members: Member[];
  /** the name each member has in the session file (after making names unique) */
  names: (string | undefined)[];
  basePort: number;
  text: string;
  /** SHA-256 of text */
  fileHash: Uint8Array;
  /** first 80 bits of fileHash in base32, four groups of four */
  fingerprint: string;
}

/** Join order: joinedAt, then key bytes; total (keys are distinct), independent of input order. */
export function orderMembers(members: Member[]): Member[] {
  return [...members].sort((a, b) => a.joinedAt - b.joinedAt || a.key.compare(b.key));
}

/** A name taken by an earlier member becomes `name (2)`, `name (3)`, … cut to fit. */
export function uniqueNames(names: (string | undefined)[]): (string | undefined)[] {
  const taken = new Set<string>();
  return names.map((name) => {
    if (name === undefined) return undefined;
    let candidate = name;
    for (let n = 2; taken.has(candidate); n++) {
      const suffix = ` (${n})`;
      candidate = name.slice(0, MAX_NAME_LENGTH - suffix.length) + suffix;
    }
    taken.add(candidate);
    return candidate;
  });
}

export function shortFingerprint(fileHash: Uint8Array): string {
  return base32Encode(fileHash.subarray(0, 10)).match(/.{4}/g)!.join('-');
}

/** The session file of these members; throws SessionFileError if it would be invalid (e.g. a member used the relay's key). */
export function buildRoster(members: Member[], relay: LobbyRelay, basePort: number): Roster {
  const ordered = orderMembers(members);
  const names = uniqueNames(ordered.map((m) => m.name));
  const parties = ordered.map((m, i) => ({ publicKey: m.key.text, ...(names[i] !== undefined ? { name: names[i] } : {}) }));
  const text = serializeSession({ basePort, relays: [relay], parties });
  parseSessionFile(text, 'the lobby roster');
  const fileHash = new Uint8Array(createHash('sha256').update(text, 'utf8').digest());
  return { members: ordered, names, basePort, text, fileHash, fingerprint: shortFingerprint(fileHash) };
}
