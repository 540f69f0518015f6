// What one member has read from the lobby, checked record by record (docs/protocol/lobby.md
// "A member's run", steps 2–5). Records that do not authenticate are counted and ignored;
// records that authenticate but contradict each other or this member's roster end the
// run with a LobbyJoinError that says what the relay (or an invite holder) did.
import { PeerKey } from '../common/peer-key.js';
import { KIND_CONFIRM, KIND_ENTRY, equalBytes, keyProof, type LobbyKeys } from './keys.js';
import { decodeConfirm, decodeEntry } from './records.js';
import type { Member, Roster } from './roster.js';
import type { LobbyRecord, View } from './wire.js';

export type JoinErrorCode =
  | 'not_found' | 'expired' | 'wrong_secret' | 'full' | 'name_taken' | 'joined_differently'
  | 'tampering' | 'timeout' | 'relay' | 'bad_roster';

export class LobbyJoinError extends Error {
  override name = 'LobbyJoinError';
  constructor(readonly code: JoinErrorCode, message: string) { super(message); }
}

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');

export const displayName = (m: Pick<Member, 'name' | 'key'>): string => m.name ?? `(${m.key.text.slice(0, 8)}…)`;

export class Ledger {
  /** valid entries by tag (hex), in the order they were read */
  readonly members = new Map<string, Member & { box: Uint8Array }>();
  /** records that did not authenticate with this invite's secret */
  ignored = 0;
  /** where the next READ starts: the relay's own counts (a relay that pads a view with extra records cannot make this member skip real ones) */
  nextEntry = 0;
  nextConfirm = 0;
  private readonly confirms: LobbyRecord[] = [];
  /** confirmations before this position have been checked against the roster */
  private confirmsChecked = 0;
  /** tags (hex) whose confirmation checked out against the roster */
  private readonly confirmed = new Set<string>();

  constructor(private readonly keys: LobbyKeys, private readonly own: { publicKey: Uint8Array; privateKey: Uint8Array }) {}

  /** Takes a READ view: the records from the positions asked for, and the relay's counts. */
  addView(v: View): void {
    this.addEntries(v.entries);
    this.confirms.push(...v.confirms);
    this.nextEntry = Math.max(this.nextEntry, v.entriesHeld);
    this.nextConfirm = Math.max(this.nextConfirm, v.confirmsHeld);
  }

  private addEntries(records: LobbyRecord[]): void {
    for (const rec of records) {
      const t = hex(rec.tag);
      const prev = this.members.get(t);
      if (prev && equalBytes(prev.box, rec.box)) continue;
      const member = this.openEntry(rec);
      if (!member) { this.ignored++; continue; }
      if (prev) throw new LobbyJoinError('tampering', `two different entries for ${displayName(prev)}'s seat: the relay (or an invite holder) is tampering with the lobby`);
      this.members.set(t, { ...member, box: rec.box });
    }
  }

  /** Own valid entry, if the lobby has it. */
  ownEntry(): Member | undefined {
    return this.members.get(hex(this.keys.tag(this.own.publicKey)));
  }

  /** Own earlier confirmation's file hash, if the lobby has one that opens. */
  ownConfirmHash(parties: number): Uint8Array | undefined {
    const tag = this.keys.tag(this.own.publicKey);
    for (const rec of this.confirms) {
      if (!equalBytes(rec.tag, tag)) continue;
      const plain = this.keys.open(KIND_CONFIRM, rec.tag, rec.box);
      const c = plain && decodeConfirm(plain, parties);
      if (c) return c.fileHash;
    }
    return undefined;
  }

  /**
   * Checks every confirmation read so far against this member's roster; returns how many
   * roster members have confirmed. Throws on a confirmation that proves the lobby showed
   * someone a different roster, or that does not prove its sender's key.
   */
  checkConfirms(roster: Roster, ownIndex: number): number {
    const byTag = new Map(roster.members.map((m, i) => [hex(m.tag), i]));
    for (; this.confirmsChecked < this.confirms.length; this.confirmsChecked++) {
      const rec = this.confirms[this.confirmsChecked]!;
      const t = hex(rec.tag);
      const plain = this.keys.open(KIND_CONFIRM, rec.tag, rec.box);
      const c = plain && decodeConfirm(plain, roster.members.length);
      if (!c) { this.ignored++; continue; }
      const i = byTag.get(t);
      if (i === undefined) {
        throw new LobbyJoinError('tampering', 'a member not on your roster confirmed the session: the relay showed members different rosters; do not use this lobby');
      }
      const sender = roster.members[i]!;
      if (!equalBytes(c.fileHash, roster.fileHash)) {
        throw new LobbyJoinError('tampering', `${displayName(sender)} confirmed a different session file: members were shown different rosters (the relay or an invite holder is tampering); do not use this lobby`);
      }
      if (i !== ownIndex) {
        const pair = this.keys.pairKey(this.own.privateKey, sender.key.bytes);
        const want = keyProof(pair, roster.fileHash, sender.key.bytes, this.own.publicKey);
        pair.fill(0);
        const got = c.proofs[ownIndex < i ? ownIndex : ownIndex - 1]!;
        if (!equalBytes(want, got)) {
          throw new LobbyJoinError('tampering', `the confirmation for ${displayName(sender)} does not prove their key: someone joined with a key they do not hold, or forged a confirmation; do not use this lobby`);
        }
      }
      this.confirmed.add(t);
    }
    return roster.members.filter((m) => this.confirmed.has(hex(m.tag))).length;
  }

  /** This member's proofs for everyone else on the roster, in roster order. */
  proofsFor(roster: Roster, ownIndex: number): Uint8Array[] {
    return roster.members.filter((_, i) => i !== ownIndex).map((m) => {
      const pair = this.keys.pairKey(this.own.privateKey, m.key.bytes);
      const proof = keyProof(pair, roster.fileHash, this.own.publicKey, m.key.bytes);
      pair.fill(0);
      return proof;
    });
  }

  private openEntry(rec: LobbyRecord): Member | null {
    const plain = this.keys.open(KIND_ENTRY, rec.tag, rec.box);
    const e = plain && decodeEntry(plain);
    if (!e || !equalBytes(this.keys.tag(e.publicKey), rec.tag)) return null;
    if (!equalBytes(e.publicKey, this.own.publicKey)) {
      // a key no pair key can be made with (low order) could never confirm: not a member
      try { this.keys.pairKey(this.own.privateKey, e.publicKey).fill(0); } catch { return null; }
    }
    return { ...e, key: PeerKey.fromBytes(e.publicKey), tag: rec.tag };
  }
}
