// The invite: everything a party needs to join a lobby, in one copy-pasteable string
// (docs/protocol/lobby.md "The invite"). Text form `MPYC<base32>`, link form `mpyc:MPYC<base32>`.
//
// offset  size  field
// 0       1     version: 1, or 2 when a flag is set (version 1 has no flags byte)
// 1       32    relay public key
// 33      16    lobby id
// 49      16    lobby secret
// 65      2     parties M
// 67      2     MPyC base port
// 69      2     relay UDP port
// 71      2     relay HTTP port
// 73      1     version 2 only: flags (bit 0: the HTTP port speaks TLS; others must be 0)
// 73+f    1     host length h, then h bytes of host (ASCII)           (f = 1 in version 2, else 0)
// 74+f+h  1     label length n, then n bytes of label (UTF-8)
// 75+f+h+n 4    SHA-256 of everything before, first 4 bytes
//
// An invite without flags is written as version 1, so the agents that read only version 1
// still read every invite that does not need version 2.
import { createHash } from 'node:crypto';
import { PeerKey } from '../common/peer-key.js';
import { MAX_PARTIES, formatRelayAddress, parseRelayAddress } from '../agent/session-file.js';
import type { RelayAddress } from '../agent/types.js';
import { base32Decode, base32Encode } from './base32.js';
import { nameProblem } from './records.js';

/** the newest version this code reads and writes (when a flag needs it) */
export const INVITE_VERSION = 2;
const VERSION_WITHOUT_FLAGS = 1;
/** flags byte, bit 0: the relay's HTTP port speaks TLS (lobby over https, WebSocket over wss) */
const FLAG_TLS = 0x01;
const KNOWN_FLAGS = FLAG_TLS;
export const LOBBY_ID_LEN = 16;
export const SECRET_LEN = 16;
const FIXED_LEN = 73;
const CHECK_LEN = 4;
const MAX_HOST_LEN = 253;
const TEXT_PREFIX = 'MPYC';
const LINK_PREFIX = 'mpyc:';
/** longest possible invite text: guards the decoder against pasted novels */
const MAX_TEXT_LEN = TEXT_PREFIX.length + Math.ceil(((FIXED_LEN + 1 + 1 + MAX_HOST_LEN + 1 + 255 + CHECK_LEN) * 8) / 5);

/** The lobby lives on the relay's HTTP port, so an invite's relay always has one. */
export type LobbyRelay = RelayAddress & { httpPort: number };

export interface Invite {
  relay: LobbyRelay;
  relayKey: PeerKey;
  lobbyId: Uint8Array;
  secret: Uint8Array;
  parties: number;
  basePort: number;
  /** the session's name, shown to every party; undefined when the creator gave none */
  label?: string;
}

type Result<T> = { ok: true; value: T } | { ok: false; error: string };

/** Why these invite fields cannot be encoded (or carried into a session file), or null. */
export function inviteProblem(inv: Invite): string | null {
  if (inv.lobbyId.length !== LOBBY_ID_LEN) return `lobby id must be ${LOBBY_ID_LEN} bytes`;
  if (inv.secret.length !== SECRET_LEN) return `lobby secret must be ${SECRET_LEN} bytes`;
  if (!Number.isInteger(inv.parties) || inv.parties < 2 || inv.parties > MAX_PARTIES) return `parties must be 2..${MAX_PARTIES}, got ${inv.parties}`;
  if (!Number.isInteger(inv.basePort) || inv.basePort < 1 || inv.basePort + inv.parties - 1 > 65535) {
    return `base port ${inv.basePort} + ${inv.parties} parties - 1 must be at most 65535`;
  }
  const r = parseRelayAddress(formatRelayAddress(inv.relay));
  if (!r.ok) return r.error;
  if (inv.relay.httpPort === undefined) return 'the relay address needs its HTTP port (KEY@host:udpPort/httpPort): the lobby is served there';
  if (!/^[\x21-\x7e]+$/.test(inv.relay.host) || inv.relay.host.length > MAX_HOST_LEN) return 'relay host must be at most 253 ASCII characters';
  if (inv.relay.publicKey !== inv.relayKey.text) return 'relay key does not match the relay address';
  if (inv.label !== undefined) {
    const np = nameProblem(inv.label);
    if (np) return `session name: ${np}`;
  }
  return null;
}

export function encodeInvite(inv: Invite): string {
  const problem = inviteProblem(inv);
  if (problem) throw new Error(`invite: ${problem}`);
  const host = Buffer.from(inv.relay.host, 'ascii');
  const label = Buffer.from(inv.label ?? '', 'utf8');
  const flags = inv.relay.tls ? FLAG_TLS : 0;
  const f = flags ? 1 : 0;
  const body = Buffer.alloc(FIXED_LEN + f + 1 + host.length + 1 + label.length);
  body[0] = flags ? INVITE_VERSION : VERSION_WITHOUT_FLAGS;
  body.set(inv.relayKey.bytes, 1);
  body.set(inv.lobbyId, 33);
  body.set(inv.secret, 49);
  body.writeUInt16BE(inv.parties, 65);
  body.writeUInt16BE(inv.basePort, 67);
  body.writeUInt16BE(inv.relay.udpPort, 69);
  body.writeUInt16BE(inv.relay.httpPort, 71);
  if (f) body[FIXED_LEN] = flags;
  const at = FIXED_LEN + f;
  body[at] = host.length;
  host.copy(body, at + 1);
  body[at + 1 + host.length] = label.length;
  label.copy(body, at + 2 + host.length);
  return TEXT_PREFIX + base32Encode(Buffer.concat([body, check(body)]));
}

export function inviteLink(text: string): string {
  return LINK_PREFIX + text;
}

function check(body: Uint8Array): Buffer {
  return createHash('sha256').update(body).digest().subarray(0, CHECK_LEN);
}

/** Parses the text or link form; never throws, and says what is wrong. */
export function decodeInvite(input: string): Result<Invite> {
  const fail = (error: string): Result<Invite> => ({ ok: false, error });
  if (input.length > 4 * MAX_TEXT_LEN) return fail('too long to be an invite');
  let text = input.replace(/\s+/g, '');
  if (text.toLowerCase().startsWith(LINK_PREFIX)) text = text.slice(LINK_PREFIX.length);
  text = text.toUpperCase();
  if (!text.startsWith(TEXT_PREFIX)) return fail(`an invite starts with ${TEXT_PREFIX} (or ${LINK_PREFIX}${TEXT_PREFIX})`);
  if (text.length > MAX_TEXT_LEN) return fail('too long to be an invite');
  const raw = base32Decode(text.slice(TEXT_PREFIX.length));
  const damaged = fail('damaged (a character is wrong or missing): copy the invite again in full');
  if (!raw || raw.length < FIXED_LEN + 2 + CHECK_LEN) return damaged;
  const buf = Buffer.from(raw.buffer, raw.byteOffset, raw.length);
  const body = buf.subarray(0, buf.length - CHECK_LEN);
  if (!check(body).equals(buf.subarray(buf.length - CHECK_LEN))) return damaged;
  const version = body[0]!;
  if (version !== VERSION_WITHOUT_FLAGS && version !== INVITE_VERSION) {
    return fail(`invite version ${version} is not supported by this mpyc-agent (it reads versions ${VERSION_WITHOUT_FLAGS} and ${INVITE_VERSION}): update mpyc-agent`);
  }
  const f = version === INVITE_VERSION ? 1 : 0;
  const flags = f ? body[FIXED_LEN]! : 0;
  // an unknown flag may change what the invite means: refuse rather than guess
  if (flags & ~KNOWN_FLAGS) return fail(`invite flags 0x${flags.toString(16)} are not known to this mpyc-agent: update mpyc-agent`);
  if (f && flags === 0) return damaged; // a version-2 invite exists only for its flags
  const at = FIXED_LEN + f;
  if (at + 2 > body.length) return damaged;
  const hostLen = body[at]!;
  if (at + 1 + hostLen + 1 > body.length) return damaged;
  const labelLen = body[at + 1 + hostLen]!;
  if (at + 2 + hostLen + labelLen !== body.length) return damaged;
  const hostBytes = body.subarray(at + 1, at + 1 + hostLen);
  if (hostBytes.some((b) => b < 0x21 || b > 0x7e)) return fail('relay host is not ASCII');
  let label: string | undefined;
  if (labelLen > 0) {
    try {
      label = new TextDecoder('utf-8', { fatal: true }).decode(body.subarray(at + 2 + hostLen));
    } catch {
      return fail('session name is not UTF-8');
    }
  }
  const relayKey = PeerKey.fromBytes(body.subarray(1, 33));
  const relay: LobbyRelay = {
    publicKey: relayKey.text, host: hostBytes.toString('ascii'),
    udpPort: body.readUInt16BE(69), httpPort: body.readUInt16BE(71), ...(flags & FLAG_TLS ? { tls: true } : {}),
  };
  const inv: Invite = {
    relay, relayKey, lobbyId: new Uint8Array(body.subarray(33, 49)), secret: new Uint8Array(body.subarray(49, 65)),
    parties: body.readUInt16BE(65), basePort: body.readUInt16BE(67), ...(label !== undefined ? { label } : {}),
  };
  const problem = inviteProblem(inv);
  if (problem) return fail(problem);
  return { ok: true, value: inv };
}
