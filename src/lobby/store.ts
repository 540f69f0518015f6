// The relay's lobbies (docs/protocol/lobby.md "Relay rules"), sans-I/O: requests in,
// responses out, `now` in milliseconds from a monotonic clock. The relay holds sealed
// records it cannot open; it only keeps them immutable per seat, bounded and short-lived.
import { ENTRY_BOX_LEN, OP_CREATE, OP_ENTRY, OP_READ, STATUS, confirmBoxLen, type LobbyRecord, type Request, type Response, type View } from './wire.js';
import { equalBytes } from './keys.js';

export interface LobbyLimits {
  /** open lobbies in total (memory: see maxLobbyBytes) */
  maxLobbies: number;
  /** open lobbies created from one source address (IPv6: one /64) */
  perSource: number;
  /** most members of one lobby */
  maxParties: number;
  /** lifetime of a lobby, seconds: the default and the maximum a creator may ask for */
  ttlS: number;
}

export const DEFAULT_LOBBY_LIMITS: LobbyLimits = { maxLobbies: 256, perSource: 8, maxParties: 64, ttlS: 3600 };
/** the wire's u16 counts, and the session file's party limit, bound every limit */
export const HARD_MAX_PARTIES = 1000;

interface Room {
  capacity: number;
  verifier: Uint8Array;
  source: string;
  expiresAt: number;
  /** how long it lived: an expired id answers EXPIRED for as long again */
  lifetimeMs: number;
  entries: LobbyRecord[];
  confirms: LobbyRecord[];
  entryByTag: Map<string, LobbyRecord>;
  confirmByTag: Map<string, LobbyRecord>;
}

/** Upper bound of one lobby's records in bytes (tags, boxes, length fields). */
export function maxLobbyBytes(capacity: number): number {
  return capacity * (2 * 18 + ENTRY_BOX_LEN + confirmBoxLen(capacity));
}

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');

export class LobbyStore {
  readonly counts = { created: 0, expired: 0 };
  private readonly rooms = new Map<string, Room>();
  /** id → until when it answers EXPIRED; bounded, oldest dropped first */
  private readonly gone = new Map<string, number>();
  private readonly bySource = new Map<string, number>();

  constructor(readonly limits: LobbyLimits) {}

  get openLobbies(): number { return this.rooms.size; }

  get members(): number {
    let n = 0;
    for (const r of this.rooms.values()) n += r.entries.length;
    return n;
  }

  handle(req: Request, source: string, now: number): Response {
    const id = hex(req.lobbyId);
    if (req.op === OP_CREATE) return this.create(id, req, source, now);
    const room = this.room(id, now);
    if (room === 'expired') return { status: STATUS.EXPIRED };
    if (!room) return { status: STATUS.NOT_FOUND };
    if (req.op === OP_READ) return { status: STATUS.OK, view: this.view(room, now, req.fromEntry, req.fromConfirm) };
    const { tag, box } = req.record;
    const key = hex(tag);
    if (req.op === OP_ENTRY) {
      if (box.length !== ENTRY_BOX_LEN) return { status: STATUS.BAD_REQUEST };
      return this.put(room, room.entryByTag, room.entries, key, req.record, now);
    }
    if (box.length !== confirmBoxLen(room.capacity)) return { status: STATUS.BAD_REQUEST };
    if (!room.entryByTag.has(key)) return { status: STATUS.NOT_MEMBER };
    return this.put(room, room.confirmByTag, room.confirms, key, req.record, now);
  }

  /** Forgets expired lobbies and old tombstones. */
  sweep(now: number): void {
    for (const [id, r] of this.rooms) if (r.expiresAt <= now) this.expire(id, r);
    for (const [id, until] of this.gone) if (until <= now) this.gone.delete(id);
  }

  private create(id: string, req: Extract<Request, { op: typeof OP_CREATE }>, source: string, now: number): Response {
    if (req.capacity < 2) return { status: STATUS.BAD_REQUEST };
    if (req.capacity > this.limits.maxParties) return { status: STATUS.TOO_LARGE };
    const existing = this.room(id, now);
    if (existing === 'expired') return { status: STATUS.EXPIRED };
    if (existing) {
      // a creator retrying after a lost response; anything else is a clash
      const same = existing.capacity === req.capacity && equalBytes(existing.verifier, req.verifier);
      return same ? { status: STATUS.OK, view: this.view(existing, now, 0xffff, 0xffff) } : { status: STATUS.CONFLICT };
    }
    if ((this.bySource.get(source) ?? 0) >= this.limits.perSource) return { status: STATUS.SOURCE_LIMIT };
    if (this.rooms.size >= this.limits.maxLobbies) return { status: STATUS.RELAY_LIMIT };
    const ttlS = req.ttlS === 0 ? this.limits.ttlS : Math.min(req.ttlS, this.limits.ttlS);
    const room: Room = {
      capacity: req.capacity, verifier: req.verifier, source, expiresAt: now + ttlS * 1000, lifetimeMs: ttlS * 1000,
      entries: [], confirms: [], entryByTag: new Map(), confirmByTag: new Map(),
    };
    this.rooms.set(id, room);
    this.bySource.set(source, (this.bySource.get(source) ?? 0) + 1);
    this.counts.created++;
    return { status: STATUS.CREATED, view: this.view(room, now, 0xffff, 0xffff) };
  }

  private put(room: Room, byTag: Map<string, LobbyRecord>, list: LobbyRecord[], key: string, rec: LobbyRecord, now: number): Response {
    const old = byTag.get(key);
    if (old) return equalBytes(old.box, rec.box) ? { status: STATUS.OK, view: this.view(room, now, 0xffff, 0xffff) } : { status: STATUS.CONFLICT };
    if (list.length >= room.capacity) return { status: STATUS.FULL };
    const copy = { tag: new Uint8Array(rec.tag), box: new Uint8Array(rec.box) };
    byTag.set(key, copy);
    list.push(copy);
    return { status: STATUS.OK, view: this.view(room, now, 0xffff, 0xffff) };
  }

  private room(id: string, now: number): Room | 'expired' | undefined {
    const r = this.rooms.get(id);
    if (r && r.expiresAt <= now) { this.expire(id, r); return 'expired'; }
    if (r) return r;
    const until = this.gone.get(id);
    if (until !== undefined && until > now) return 'expired';
    return undefined;
  }

  private expire(id: string, r: Room): void {
    this.rooms.delete(id);
    const n = (this.bySource.get(r.source) ?? 1) - 1;
    if (n > 0) this.bySource.set(r.source, n); else this.bySource.delete(r.source);
    this.counts.expired++;
    this.gone.set(id, r.expiresAt + r.lifetimeMs);
    // a tombstone is 40-odd bytes; keep at most four per possible open lobby
    while (this.gone.size > 4 * this.limits.maxLobbies) this.gone.delete(this.gone.keys().next().value!);
  }

  /** The lobby from the given positions on; 0xffff = no records, just the counts. */
  private view(r: Room, now: number, fromEntry: number, fromConfirm: number): View {
    return {
      capacity: r.capacity, secondsLeft: Math.max(0, Math.ceil((r.expiresAt - now) / 1000)), verifier: r.verifier,
      entriesHeld: r.entries.length, confirmsHeld: r.confirms.length,
      entries: r.entries.slice(fromEntry), confirms: r.confirms.slice(fromConfirm),
    };
  }
}
