// Requests and responses of the relay's lobby API, `POST /lobby` (docs/protocol/lobby.md
// "Relay API"). Binary, big-endian. Decoders check every length and return null (or an
// error status), never throw: both ends parse what the other side controls.
//
// request:  version (1) ‖ op (1) ‖ lobby id (16) ‖ op body
//   CREATE  capacity (2) ‖ ttl s (4) ‖ verifier (16)
//   ENTRY   tag (16) ‖ sealed entry (ENTRY_BOX_LEN)
//   CONFIRM tag (16) ‖ sealed confirmation (confirmBoxLen(capacity))
//   READ    first entry (2) ‖ first confirmation (2)
// response: version (1) ‖ status (1) ‖ [OK/CREATED: view]
//   view    capacity (2) ‖ seconds left (4) ‖ verifier (16) ‖ entries held (2) ‖ confirmations held (2)
//           ‖ e (2) ‖ c (2) ‖ e × (tag 16 ‖ len 2 ‖ box) ‖ c × (tag 16 ‖ len 2 ‖ box)
import { LOBBY_ID_LEN } from './invite.js';
import { BOX_OVERHEAD, TAG_LEN, VERIFIER_LEN } from './keys.js';
import { ENTRY_PLAINTEXT_LEN, confirmPlaintextLen } from './records.js';

/** the one endpoint, on the relay's HTTP port */
export const LOBBY_PATH = '/lobby';
export const WIRE_VERSION = 1;
export const OP_CREATE = 1;
export const OP_ENTRY = 2;
export const OP_CONFIRM = 3;
export const OP_READ = 4;
const HEADER_LEN = 2 + LOBBY_ID_LEN;
const CREATE_LEN = HEADER_LEN + 2 + 4 + VERIFIER_LEN;
const READ_LEN = HEADER_LEN + 4;
const VIEW_HEADER_LEN = 2 + 4 + VERIFIER_LEN + 2 + 2 + 2 + 2;
const RECORD_HEADER_LEN = TAG_LEN + 2;

export const ENTRY_BOX_LEN = ENTRY_PLAINTEXT_LEN + BOX_OVERHEAD;
export function confirmBoxLen(capacity: number): number {
  return confirmPlaintextLen(capacity) + BOX_OVERHEAD;
}
/** the largest request for a relay whose lobbies hold at most `maxParties` */
export function maxRequestLen(maxParties: number): number {
  return HEADER_LEN + TAG_LEN + Math.max(ENTRY_BOX_LEN, confirmBoxLen(maxParties));
}

export const STATUS = {
  OK: 0, CREATED: 1, BAD_REQUEST: 2, NOT_FOUND: 3, EXPIRED: 4, FULL: 5, CONFLICT: 6,
  SOURCE_LIMIT: 7, RELAY_LIMIT: 8, TOO_LARGE: 9, NOT_MEMBER: 10,
} as const;
export type Status = (typeof STATUS)[keyof typeof STATUS];
export type StatusName = keyof typeof STATUS;
export const STATUS_NAMES = Object.keys(STATUS) as StatusName[];
/** the HTTP status mirroring each lobby status, for operators reading logs and curl */
export const HTTP_STATUS: Record<StatusName, number> = {
  OK: 200, CREATED: 201, BAD_REQUEST: 400, NOT_FOUND: 404, EXPIRED: 410, FULL: 409, CONFLICT: 409,
  SOURCE_LIMIT: 429, RELAY_LIMIT: 503, TOO_LARGE: 413, NOT_MEMBER: 409,
};
export function statusName(s: Status): StatusName {
  return STATUS_NAMES[s]!;
}

export interface LobbyRecord { tag: Uint8Array; box: Uint8Array }

export type Request =
  | { op: typeof OP_CREATE; lobbyId: Uint8Array; capacity: number; ttlS: number; verifier: Uint8Array }
  | { op: typeof OP_ENTRY | typeof OP_CONFIRM; lobbyId: Uint8Array; record: LobbyRecord }
  | { op: typeof OP_READ; lobbyId: Uint8Array; fromEntry: number; fromConfirm: number };

export interface View {
  capacity: number;
  secondsLeft: number;
  verifier: Uint8Array;
  entriesHeld: number;
  confirmsHeld: number;
  entries: LobbyRecord[];
  confirms: LobbyRecord[];
}

export type Response = { status: typeof STATUS.OK | typeof STATUS.CREATED; view: View } | { status: Exclude<Status, 0 | 1> };

export function encodeRequest(r: Request): Uint8Array {
  const head = (len: number): Buffer => {
    const b = Buffer.alloc(len);
    b[0] = WIRE_VERSION;
    b[1] = r.op;
    b.set(r.lobbyId, 2);
    return b;
  };
  switch (r.op) {
    case OP_CREATE: {
      const b = head(CREATE_LEN);
      b.writeUInt16BE(r.capacity, HEADER_LEN);
      b.writeUInt32BE(r.ttlS, HEADER_LEN + 2);
      b.set(r.verifier, HEADER_LEN + 6);
      return b;
    }
    case OP_READ: {
      const b = head(READ_LEN);
      b.writeUInt16BE(r.fromEntry, HEADER_LEN);
      b.writeUInt16BE(r.fromConfirm, HEADER_LEN + 2);
      return b;
    }
    default: {
      const b = head(HEADER_LEN + TAG_LEN + r.record.box.length);
      b.set(r.record.tag, HEADER_LEN);
      b.set(r.record.box, HEADER_LEN + TAG_LEN);
      return b;
    }
  }
}

/**
 * Parses a request's framing. Box sizes are checked by the store, which knows the lobby's
 * capacity; here only that a record has a tag and a non-empty box.
 */
export function decodeRequest(b: Uint8Array): Request | null {
  if (b.length < HEADER_LEN || b[0] !== WIRE_VERSION) return null;
  const buf = Buffer.from(b.buffer, b.byteOffset, b.length);
  const lobbyId = new Uint8Array(buf.subarray(2, HEADER_LEN));
  const op = buf[1];
  if (op === OP_CREATE) {
    if (buf.length !== CREATE_LEN) return null;
    return { op, lobbyId, capacity: buf.readUInt16BE(HEADER_LEN), ttlS: buf.readUInt32BE(HEADER_LEN + 2), verifier: new Uint8Array(buf.subarray(HEADER_LEN + 6)) };
  }
  if (op === OP_READ) {
    if (buf.length !== READ_LEN) return null;
    return { op, lobbyId, fromEntry: buf.readUInt16BE(HEADER_LEN), fromConfirm: buf.readUInt16BE(HEADER_LEN + 2) };
  }
  if (op === OP_ENTRY || op === OP_CONFIRM) {
    if (buf.length <= HEADER_LEN + TAG_LEN) return null;
    return { op, lobbyId, record: { tag: new Uint8Array(buf.subarray(HEADER_LEN, HEADER_LEN + TAG_LEN)), box: new Uint8Array(buf.subarray(HEADER_LEN + TAG_LEN)) } };
  }
  return null;
}

export function encodeResponse(r: Response): Uint8Array {
  if (r.status !== STATUS.OK && r.status !== STATUS.CREATED) return Uint8Array.of(WIRE_VERSION, r.status);
  const v = r.view;
  const records = [...v.entries, ...v.confirms];
  const len = 2 + VIEW_HEADER_LEN + records.reduce((n, x) => n + RECORD_HEADER_LEN + x.box.length, 0);
  const b = Buffer.alloc(len);
  b[0] = WIRE_VERSION;
  b[1] = r.status;
  let o = 2;
  o = b.writeUInt16BE(v.capacity, o);
  o = b.writeUInt32BE(v.secondsLeft, o);
  b.set(v.verifier, o);
  o += VERIFIER_LEN;
  o = b.writeUInt16BE(v.entriesHeld, o);
  o = b.writeUInt16BE(v.confirmsHeld, o);
  o = b.writeUInt16BE(v.entries.length, o);
  o = b.writeUInt16BE(v.confirms.length, o);
  for (const x of records) {
    b.set(x.tag, o);
    o = b.writeUInt16BE(x.box.length, o + TAG_LEN);
    b.set(x.box, o);
    o += x.box.length;
  }
  return b;
}

/** null for anything that is not exactly one well-formed response. */
export function decodeResponse(b: Uint8Array): Response | null {
  if (b.length < 2 || b[0] !== WIRE_VERSION) return null;
  const status = b[1]!;
  if (status > STATUS.NOT_MEMBER) return null;
  if (status !== STATUS.OK && status !== STATUS.CREATED) return b.length === 2 ? { status: status as Exclude<Status, 0 | 1> } : null;
  if (b.length < 2 + VIEW_HEADER_LEN) return null;
  const buf = Buffer.from(b.buffer, b.byteOffset, b.length);
  let o = 2;
  const capacity = buf.readUInt16BE(o);
  const secondsLeft = buf.readUInt32BE(o + 2);
  const verifier = new Uint8Array(buf.subarray(o + 6, o + 6 + VERIFIER_LEN));
  o += 6 + VERIFIER_LEN;
  const entriesHeld = buf.readUInt16BE(o);
  const confirmsHeld = buf.readUInt16BE(o + 2);
  const nEntries = buf.readUInt16BE(o + 4);
  const nConfirms = buf.readUInt16BE(o + 6);
  o += 8;
  const read = (n: number): LobbyRecord[] | null => {
    const out: LobbyRecord[] = [];
    for (let i = 0; i < n; i++) {
      if (o + RECORD_HEADER_LEN > buf.length) return null;
      const tag = new Uint8Array(buf.subarray(o, o + TAG_LEN));
      const len = buf.readUInt16BE(o + TAG_LEN);
      o += RECORD_HEADER_LEN;
      if (o + len > buf.length) return null;
      out.push({ tag, box: new Uint8Array(buf.subarray(o, o + len)) });
      o += len;
    }
    return out;
  };
  const entries = read(nEntries);
  const confirms = entries && read(nConfirms);
  if (!entries || !confirms || o !== buf.length) return null;
  return { status, view: { capacity, secondsLeft, verifier, entriesHeld, confirmsHeld, entries, confirms } };
}
