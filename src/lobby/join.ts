// A member's run through the lobby (docs/protocol/lobby.md "A member's run"): post its
// sealed entry, wait for M members, confirm the session file they determine, wait for
// every member's confirmation, return the roster. The I/O is one `send` function (the
// relay's HTTP API, or a test's tampering relay) and a sleep between polls.
import { PeerKey } from '../common/peer-key.js';
import type { KeyPair } from '../noise/index.js';
import type { Invite } from './invite.js';
import { KIND_CONFIRM, KIND_ENTRY, LobbyKeys, equalBytes } from './keys.js';
import { Ledger, LobbyJoinError, displayName } from './ledger.js';
import { encodeConfirm, encodeEntry } from './records.js';
import { buildRoster, type Roster } from './roster.js';
import { OP_CONFIRM, OP_ENTRY, OP_READ, STATUS, statusName, type Request, type Response, type View } from './wire.js';
import { LobbyTransportError } from './client.js';

export { LobbyJoinError } from './ledger.js';

export type Progress =
  | { kind: 'entered'; reused: boolean; name: string | undefined; secondsLeft: number }
  | { kind: 'members'; names: string[]; parties: number }
  | { kind: 'confirmed'; count: number; parties: number }
  | { kind: 'ignored'; count: number }
  | { kind: 'unreachable'; error: string };

export interface JoinOptions {
  invite: Invite;
  keyPair: KeyPair;
  name?: string;
  send: (req: Request) => Promise<Response>;
  onProgress?: (p: Progress) => void;
  /** between polls (default 500 ms) */
  pollMs?: number;
  /** give up after this long (default: when the lobby expires) */
  timeoutMs?: number;
  /** the wall clock sealed as joinedAt (default Date.now) */
  wallClock?: () => number;
}

export interface JoinResult {
  roster: Roster;
  ownIndex: number;
  /** this run found its entry already in the lobby (a repeated join) */
  reused: boolean;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function joinLobby(o: JoinOptions): Promise<JoinResult> {
  const keys = new LobbyKeys(o.invite.relayKey, o.invite.lobbyId, o.invite.secret);
  try {
    return await new JoinRun(o, keys).run();
  } finally {
    keys.wipe();
  }
}

class JoinRun {
  private readonly ledger: Ledger;
  private readonly parties: number;
  private readonly pollMs: number;
  private deadline = Infinity;
  private lastUnreachable = '';
  private lastIgnored = 0;

  constructor(private readonly o: JoinOptions, private readonly keys: LobbyKeys) {
    this.ledger = new Ledger(keys, o.keyPair);
    this.parties = o.invite.parties;
    this.pollMs = o.pollMs ?? 500;
    if (o.timeoutMs !== undefined) this.deadline = performance.now() + o.timeoutMs;
  }

  async run(): Promise<JoinResult> {
    const first = await this.read();
    const reused = await this.enter(first);
    await this.waitUntil(() => this.ledger.members.size >= this.parties, 'all members to join');
    const { roster, ownIndex } = this.roster();
    await this.confirm(roster, ownIndex);
    let lastCount = -1;
    await this.waitUntil(() => {
      const n = this.ledger.checkConfirms(roster, ownIndex);
      if (n !== lastCount) { lastCount = n; this.o.onProgress?.({ kind: 'confirmed', count: n, parties: this.parties }); }
      return n === this.parties;
    }, 'every member to confirm the roster');
    return { roster, ownIndex, reused };
  }

  /** Posts this member's entry unless the lobby already has it; returns whether it had. */
  private async enter(view: View): Promise<boolean> {
    const own = this.ledger.ownEntry();
    if (own) {
      if (own.name !== this.o.name) {
        throw new LobbyJoinError('joined_differently', `you already joined this lobby with this key as ${own.name === undefined ? 'a member without a name' : JSON.stringify(own.name)}; run join again with ${own.name === undefined ? 'no --name' : `--name ${JSON.stringify(own.name)}`}`);
      }
      this.o.onProgress?.({ kind: 'entered', reused: true, name: own.name, secondsLeft: view.secondsLeft });
      return true;
    }
    const others = [...this.ledger.members.values()];
    if (others.length >= this.parties) throw this.fullError();
    if (this.o.name !== undefined && others.some((m) => m.name === this.o.name)) {
      throw new LobbyJoinError('name_taken', `the name ${JSON.stringify(this.o.name)} is taken in this lobby; choose another with --name`);
    }
    const publicKey = this.o.keyPair.publicKey;
    const tag = this.keys.tag(publicKey);
    const plain = encodeEntry({ publicKey, joinedAt: (this.o.wallClock ?? Date.now)(), ...(this.o.name !== undefined ? { name: this.o.name } : {}) });
    const r = await this.request({ op: OP_ENTRY, lobbyId: this.keys.lobbyId, record: { tag, box: this.keys.seal(KIND_ENTRY, tag, plain) } });
    if (r.status === STATUS.FULL) { await this.read(); throw this.fullError(); }
    // CONFLICT: an earlier run of ours got in first (its response was lost); it is read next
    if (r.status !== STATUS.OK && r.status !== STATUS.CONFLICT) throw this.statusError(r.status);
    this.o.onProgress?.({ kind: 'entered', reused: false, name: this.o.name, secondsLeft: view.secondsLeft });
    await this.read();
    const mine = this.ledger.ownEntry();
    if (!mine) throw new LobbyJoinError('tampering', 'the relay accepted this entry but does not show it: it is dropping records');
    if (mine.name !== this.o.name) throw new LobbyJoinError('joined_differently', `an earlier run joined this lobby as ${JSON.stringify(mine.name)}`);
    return false;
  }

  private roster(): { roster: Roster; ownIndex: number } {
    const members = [...this.ledger.members.values()];
    if (members.length > this.parties) {
      throw new LobbyJoinError('tampering', `the lobby shows ${members.length} members for ${this.parties} seats: the relay is tampering, or an invite holder joined more than once`);
    }
    let roster: Roster;
    try {
      roster = buildRoster(members.map(({ box: _box, ...m }) => m), this.o.invite.relay, this.o.invite.basePort);
    } catch (err) {
      throw new LobbyJoinError('bad_roster', `the members do not make a valid session file: ${(err as Error).message}`);
    }
    const ownKey = PeerKey.fromBytes(this.o.keyPair.publicKey);
    const ownIndex = roster.members.findIndex((m) => m.key.equals(ownKey));
    if (ownIndex < 0) throw new LobbyJoinError('tampering', 'the lobby filled up without your entry: the relay dropped it');
    return { roster, ownIndex };
  }

  private async confirm(roster: Roster, ownIndex: number): Promise<void> {
    const earlier = this.ledger.ownConfirmHash(this.parties);
    if (earlier) {
      if (!equalBytes(earlier, roster.fileHash)) throw new LobbyJoinError('tampering', 'you confirmed a different roster in this lobby before: the relay is showing you a different list now; do not use this lobby');
      return;
    }
    const tag = this.keys.tag(this.o.keyPair.publicKey);
    const plain = encodeConfirm({ fileHash: roster.fileHash, proofs: this.ledger.proofsFor(roster, ownIndex) });
    const r = await this.request({ op: OP_CONFIRM, lobbyId: this.keys.lobbyId, record: { tag, box: this.keys.seal(KIND_CONFIRM, tag, plain) } });
    if (r.status !== STATUS.OK && r.status !== STATUS.CONFLICT) throw this.statusError(r.status);
  }

  /** READ from where this member left off; checks the verifier and feeds the ledger. */
  private async read(): Promise<View> {
    const r = await this.request({ op: OP_READ, lobbyId: this.keys.lobbyId, fromEntry: this.ledger.nextEntry, fromConfirm: this.ledger.nextConfirm });
    if (r.status !== STATUS.OK) throw this.statusError(r.status);
    if (!equalBytes(r.view.verifier, this.keys.verifier)) {
      throw new LobbyJoinError('wrong_secret', 'this invite\'s secret does not match the lobby: the invite was altered, or belongs to another lobby; ask for the invite again');
    }
    if (this.deadline === Infinity || this.o.timeoutMs === undefined) this.deadline = Math.min(this.deadline, performance.now() + r.view.secondsLeft * 1000);
    const before = this.ledger.members.size;
    this.ledger.addView(r.view);
    if (this.ledger.members.size !== before) {
      this.o.onProgress?.({ kind: 'members', names: [...this.ledger.members.values()].map(displayName), parties: this.parties });
    }
    if (this.ledger.ignored !== this.lastIgnored) {
      this.lastIgnored = this.ledger.ignored;
      this.o.onProgress?.({ kind: 'ignored', count: this.ledger.ignored });
    }
    return r.view;
  }

  private async waitUntil(done: () => boolean, what: string): Promise<void> {
    while (!done()) {
      if (performance.now() + this.pollMs > this.deadline) {
        throw new LobbyJoinError('timeout', `gave up waiting for ${what}${this.ledger.ignored > 0 ? ` (${this.ledger.ignored} record(s) in the lobby do not authenticate with this invite)` : ''}`);
      }
      await sleep(this.pollMs);
      await this.read();
    }
  }

  /** One request; an unreachable relay is retried (and reported once) until the deadline. */
  private async request(req: Request): Promise<Response> {
    for (;;) {
      try {
        const r = await this.o.send(req);
        this.lastUnreachable = '';
        return r;
      } catch (err) {
        if (!(err instanceof LobbyTransportError)) throw err;
        if (err.message !== this.lastUnreachable) { this.lastUnreachable = err.message; this.o.onProgress?.({ kind: 'unreachable', error: err.message }); }
        if (performance.now() + this.pollMs > this.deadline) throw new LobbyJoinError('relay', err.message);
        await sleep(Math.max(this.pollMs, 1000));
      }
    }
  }

  private fullError(): LobbyJoinError {
    const names = [...this.ledger.members.values()].map(displayName);
    return new LobbyJoinError('full', `the lobby is full: ${this.parties} of ${this.parties} have joined (${names.join(', ')}); to join, ask for a new invite`);
  }

  private statusError(s: Response['status']): LobbyJoinError {
    if (s === STATUS.NOT_FOUND) return new LobbyJoinError('not_found', 'the relay has no such lobby: the invite is for another relay, or the relay restarted (ask for a new invite)');
    if (s === STATUS.EXPIRED) return new LobbyJoinError('expired', 'the lobby has expired (lobbies last an hour by default): ask for a new invite');
    return new LobbyJoinError('relay', `the relay refused the request (${statusName(s)})`);
  }
}
