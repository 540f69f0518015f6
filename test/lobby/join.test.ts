// Members joining through a relay's lobby (in-process relay, real HTTP on loopback), and
// what a relay that reorders, inserts, swaps, drops or equivocates achieves: nothing but
// detection (or, for reordering and junk, no effect at all).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRelay, type Relay } from '../relay/helpers.js';
import { inviteFor, openLobby, join, joiner, honest, type Send } from './helpers.js';
import { LobbyKeys, KIND_CONFIRM, KIND_ENTRY } from '../../src/lobby/keys.js';
import { encodeConfirm, encodeEntry } from '../../src/lobby/records.js';
import { LobbyJoinError } from '../../src/lobby/join.js';
import { OP_READ, STATUS, type LobbyRecord, type View } from '../../src/lobby/wire.js';
import { parseSessionFile } from '../../src/agent/session-file.js';
import { generateKeyPair } from '../../src/noise/index.js';
import type { Invite } from '../../src/lobby/invite.js';

let relay: Relay;
// every lobby here is created from 127.0.0.1: lift the per-source cap (tested in store.test.ts and cli.test.ts)
beforeAll(async () => { relay = await startRelay({ lobby: { perSource: 100 } }); });
afterAll(async () => { await relay.server.stop(false); });

const code = (p: Promise<unknown>): Promise<string> => p.then(() => 'ok', (e: unknown) => (e instanceof LobbyJoinError ? e.code : `threw ${String(e)}`));

/** A send that passes requests to the relay and rewrites READ views on the way back. */
function tampering(inv: Invite, rewrite: (v: View, fromEntry: number) => void): Send {
  const send = honest(inv);
  return async (req) => {
    const r = await send(req);
    if (req.op === OP_READ && r.status === STATUS.OK) rewrite(r.view, req.fromEntry);
    return r;
  };
}

/** A sealed entry made with the invite's secret: what an invite holder (not the relay) can make. */
function insiderEntry(inv: Invite, name: string, joinedAt = Date.now()): { record: LobbyRecord; keyPair: ReturnType<typeof generateKeyPair> } {
  const keys = new LobbyKeys(inv.relayKey, inv.lobbyId, inv.secret);
  const keyPair = generateKeyPair();
  const tag = keys.tag(keyPair.publicKey);
  return { keyPair, record: { tag, box: keys.seal(KIND_ENTRY, tag, encodeEntry({ publicKey: keyPair.publicKey, joinedAt, name })) } };
}

describe('lobby join', () => {
  it('three members end with the same session text and fingerprint; indices follow their sealed join times, not arrival', async () => {
    const inv = inviteFor(relay, 3, { label: 'budget' });
    await openLobby(inv);
    const [a, b, c] = [joiner('alice'), joiner('bob'), joiner('carol')];
    // carol reaches the relay first, but sealed the latest join time
    const rc = join(inv, c, { wallClock: () => 3000 });
    await new Promise((r) => setTimeout(r, 200));
    const results = await Promise.all([join(inv, a, { wallClock: () => 1000 }), join(inv, b, { wallClock: () => 2000 }), rc]);
    expect(new Set(results.map((r) => r.roster.text)).size).toBe(1);
    expect(new Set(results.map((r) => r.roster.fingerprint)).size).toBe(1);
    expect(results.map((r) => r.ownIndex)).toEqual([0, 1, 2]);
    const s = parseSessionFile(results[0]!.roster.text, 'x');
    expect(s.parties.map((p) => p.name)).toEqual(['alice', 'bob', 'carol']);
    expect(s.relays[0]).toEqual(inv.relay);
    expect(results[0]!.roster.fingerprint).toMatch(/^[A-Z2-7]{4}(-[A-Z2-7]{4}){3}$/);
    const seen = c.progress.filter((p) => p.kind === 'members');
    expect(seen[0]).toEqual({ kind: 'members', names: ['carol'], parties: 3 });
    expect(seen.at(-1)).toMatchObject({ names: expect.arrayContaining(['alice', 'bob', 'carol']) });
    expect(c.progress.at(-1)).toEqual({ kind: 'confirmed', count: 3, parties: 3 });
  });

  it('a repeated join finds its seat and ends with the same file; a join under another name is refused', async () => {
    const inv = inviteFor(relay, 2);
    await openLobby(inv);
    const [a, b] = [joiner('alice'), joiner('bob')];
    const first = await Promise.all([join(inv, a), join(inv, b)]);
    const again = await join(inv, a);
    expect(again.reused).toBe(true);
    expect(again.roster.text).toBe(first[0]!.roster.text);
    expect(await code(join(inv, { ...a, name: 'alicia' }))).toBe('joined_differently');
  });

  it('a late member joins a waiting lobby; a member past the last seat is told the lobby is full, with who is in', async () => {
    const inv = inviteFor(relay, 3);
    await openLobby(inv);
    const early = [join(inv, joiner('alice')), join(inv, joiner('bob'))];
    await new Promise((r) => setTimeout(r, 1000));
    const late = await join(inv, joiner('carol'));
    expect(late.ownIndex).toBe(2);
    await Promise.all(early);
    const err = await join(inv, joiner('dave')).catch((e: LobbyJoinError) => e);
    expect(err).toBeInstanceOf(LobbyJoinError);
    expect((err as LobbyJoinError).code).toBe('full');
    expect((err as LobbyJoinError).message).toMatch(/3 of 3 have joined \(alice, bob, carol\)/);
  });

  it('a taken name is refused before the member takes a seat', async () => {
    const inv = inviteFor(relay, 3);
    await openLobby(inv);
    const first = join(inv, joiner('alice'), { timeoutMs: 2000 });
    await new Promise((r) => setTimeout(r, 300));
    expect(await code(join(inv, joiner('alice')))).toBe('name_taken');
    expect(await code(first)).toBe('timeout');
  });

  it('an invite with the wrong secret is rejected before it takes a seat', async () => {
    const inv = inviteFor(relay, 2);
    await openLobby(inv);
    const wrong = { ...inv, secret: new Uint8Array(inv.secret).map((x, i) => (i === 0 ? x ^ 1 : x)) };
    expect(await code(join(wrong, joiner('mallory')))).toBe('wrong_secret');
    const r = await honest(inv)({ op: OP_READ, lobbyId: inv.lobbyId, fromEntry: 0, fromConfirm: 0 });
    expect(r.status === STATUS.OK && r.view.entriesHeld).toBe(0);
  });

  it('an unknown lobby, and an expired one, give clear errors', async () => {
    expect(await code(join(inviteFor(relay, 2), joiner('a')))).toBe('not_found');
    const short = await startRelay({ lobby: { ttlS: 1 } });
    try {
      const inv = inviteFor(short, 2);
      await openLobby(inv);
      const waiting = code(join(inv, joiner('alice'), { timeoutMs: 10_000 }));
      await new Promise((r) => setTimeout(r, 1300));
      expect(await code(join(inv, joiner('bob')))).toBe('expired');
      expect(await waiting).toBe('expired');
    } finally { await short.server.stop(false); }
  });
});

describe('a tampering relay', () => {
  it('reordering entries changes nothing', async () => {
    const inv = inviteFor(relay, 3);
    await openLobby(inv);
    const reverse = tampering(inv, (v) => { v.entries.reverse(); v.confirms.reverse(); });
    const results = await Promise.all([join(inv, joiner('a'), { send: reverse }), join(inv, joiner('b')), join(inv, joiner('c'), { send: reverse })]);
    expect(new Set(results.map((r) => r.roster.text)).size).toBe(1);
  });

  it('an inserted entry (the relay cannot seal one) is ignored and reported; the session is unaffected', async () => {
    const inv = inviteFor(relay, 2);
    await openLobby(inv);
    const other = inviteFor(relay, 2); // the relay's best attempt: a box under a secret it chose
    const fake = insiderEntry(other, 'mallory').record;
    let injected = false;
    const insert = tampering(inv, (v) => { if (!injected) { v.entries.unshift(fake); injected = true; } });
    const a = joiner('alice');
    const [ra, rb] = await Promise.all([join(inv, a, { send: insert }), join(inv, joiner('bob'))]);
    expect(ra.roster.text).toBe(rb.roster.text);
    expect(ra.roster.text).not.toMatch(/mallory/);
    expect(a.progress).toContainEqual({ kind: 'ignored', count: 1 });
  });

  it('a swapped key (bob\'s entry replaced by one the relay made) is detected: nobody accepts it, nothing is written', async () => {
    const inv = inviteFor(relay, 2);
    await openLobby(inv);
    const b = joiner('bob');
    const bobTag = new LobbyKeys(inv.relayKey, inv.lobbyId, inv.secret).tag(b.keyPair.publicKey);
    const forged = insiderEntry(inviteFor(relay, 2), 'bob').record.box; // sealed without the invite's secret
    const swap = tampering(inv, (v) => { for (const e of v.entries) if (Buffer.from(e.tag).equals(bobTag)) e.box = forged; });
    const a = joiner('alice');
    const [ca, cb] = await Promise.all([code(join(inv, a, { send: swap, timeoutMs: 2500 })), code(join(inv, b, { timeoutMs: 2500 }))]);
    expect(ca).toBe('timeout');
    expect(a.progress).toContainEqual({ kind: 'ignored', count: 1 });
    expect(cb).toBe('timeout'); // bob never sees alice confirm his roster
  });

  it('showing members different rosters (with an extra invite holder\'s entry) is detected by every member', async () => {
    const inv = inviteFor(relay, 3);
    await openLobby(inv);
    const [a, b, c] = [joiner('alice'), joiner('bob'), joiner('carol')];
    const dave = insiderEntry(inv, 'dave');
    const keys = new LobbyKeys(inv.relayKey, inv.lobbyId, inv.secret);
    const bobTag = Buffer.from(keys.tag(b.keyPair.publicKey));
    // carol is shown dave instead of bob
    const equivocate = tampering(inv, (v) => {
      v.entries = v.entries.map((e) => (bobTag.equals(e.tag) ? dave.record : e));
      v.confirms = v.confirms.filter((e) => !bobTag.equals(e.tag));
    });
    const errs = await Promise.all([
      join(inv, a, { timeoutMs: 5000 }), join(inv, b, { timeoutMs: 5000 }), join(inv, c, { send: equivocate, timeoutMs: 5000 }),
    ].map((p) => p.then(() => undefined, (e: unknown) => e as LobbyJoinError)));
    expect(errs.map((e) => e?.code)).toEqual(['tampering', 'tampering', 'tampering']);
    // carol learns it from alice's (or bob's) confirmation of another file; they from hers
    for (const e of errs) expect(e!.message).toMatch(/confirmed a different session file|not on your roster/);
    expect(errs[2]!.message).toMatch(/alice confirmed a different session file/);
  });

  it('a confirmation forged by an invite holder (no private key of the member) is detected', async () => {
    const inv = inviteFor(relay, 2);
    await openLobby(inv);
    const [a, b] = [joiner('alice'), joiner('bob')];
    const keys = new LobbyKeys(inv.relayKey, inv.lobbyId, inv.secret);
    const bobTag = keys.tag(b.keyPair.publicKey);
    // alice is shown a confirmation for bob's seat carrying her file hash but a made-up proof
    const forge = tampering(inv, (v) => {
      for (const e of v.confirms) {
        if (!Buffer.from(e.tag).equals(bobTag)) continue;
        const real = keys.open(KIND_CONFIRM, e.tag, e.box)!;
        e.box = keys.seal(KIND_CONFIRM, e.tag, encodeConfirm({ fileHash: real.subarray(0, 32), proofs: [new Uint8Array(16)] }));
      }
    });
    const [ea, cb] = await Promise.all([join(inv, a, { send: forge }).then(() => undefined, (e: unknown) => e as LobbyJoinError), code(join(inv, b))]);
    expect(ea?.code).toBe('tampering');
    expect(ea?.message).toMatch(/the confirmation for bob does not prove their key/);
    expect(cb).toBe('ok');
  });

  it('an entry sealed (by an invite holder) under a seat that is not its key\'s is ignored', async () => {
    const inv = inviteFor(relay, 2);
    await openLobby(inv);
    const keys = new LobbyKeys(inv.relayKey, inv.lobbyId, inv.secret);
    const holder = generateKeyPair();
    const wrongSeat = keys.tag(generateKeyPair().publicKey);
    const misfiled = { tag: wrongSeat, box: keys.seal(KIND_ENTRY, wrongSeat, encodeEntry({ publicKey: holder.publicKey, joinedAt: 0, name: 'eve' })) };
    const insert = tampering(inv, (v, from) => { if (from === 0) v.entries.unshift(misfiled); });
    const a = joiner('alice');
    const [ra] = await Promise.all([join(inv, a, { send: insert }), join(inv, joiner('bob'))]);
    expect(ra.roster.text).not.toMatch(/eve/);
    expect(a.progress).toContainEqual({ kind: 'ignored', count: 1 });
  });

  it('two different entries for one seat (an invite holder re-sealing a member\'s key under another name) end the run', async () => {
    const inv = inviteFor(relay, 2);
    await openLobby(inv);
    const keys = new LobbyKeys(inv.relayKey, inv.lobbyId, inv.secret);
    const b = joiner('bob');
    const seat = keys.tag(b.keyPair.publicKey);
    const resealed = { tag: seat, box: keys.seal(KIND_ENTRY, seat, encodeEntry({ publicKey: b.keyPair.publicKey, joinedAt: 0, name: 'bobby' })) };
    const twice = tampering(inv, (v) => { if (v.entries.some((e) => Buffer.from(e.tag).equals(seat))) v.entries.push(resealed); });
    const [ea] = await Promise.all([join(inv, joiner('alice'), { send: twice, timeoutMs: 3000 }).then(() => undefined, (e: unknown) => e as LobbyJoinError), code(join(inv, b, { timeoutMs: 3000 }))]);
    expect(ea?.code).toBe('tampering');
    expect(ea?.message).toMatch(/two different entries for bob's seat/);
  });

  it('records replayed from another lobby with the same members do not authenticate', async () => {
    const inv1 = inviteFor(relay, 2);
    const inv2 = { ...inviteFor(relay, 2), secret: new Uint8Array(inv1.secret) }; // even with the same secret
    await openLobby(inv1);
    await openLobby(inv2);
    const [a, b] = [joiner('alice'), joiner('bob')];
    await Promise.all([join(inv1, a), join(inv1, b)]);
    const old = await honest(inv1)({ op: OP_READ, lobbyId: inv1.lobbyId, fromEntry: 0, fromConfirm: 0 });
    if (old.status !== STATUS.OK) throw new Error('read');
    const replay = tampering(inv2, (v, from) => { if (from === 0) v.entries.push(...old.view.entries.filter((e) => !v.entries.some((x) => Buffer.from(x.tag).equals(e.tag)))); });
    const c = joiner('carol');
    expect(await code(join(inv2, c, { send: replay, timeoutMs: 1500 }))).toBe('timeout');
    expect(c.progress).toContainEqual({ kind: 'ignored', count: 2 });
  });

  it('a relay that accepts an entry but never shows it is named', async () => {
    const inv = inviteFor(relay, 2);
    await openLobby(inv);
    const a = joiner('alice');
    const tagA = Buffer.from(new LobbyKeys(inv.relayKey, inv.lobbyId, inv.secret).tag(a.keyPair.publicKey));
    const drop = tampering(inv, (v) => { v.entries = v.entries.filter((e) => !tagA.equals(e.tag)); });
    const err = await join(inv, a, { send: drop }).catch((e: LobbyJoinError) => e);
    expect((err as LobbyJoinError).code).toBe('tampering');
    expect((err as LobbyJoinError).message).toMatch(/dropping/);
  });
});
