// The lobby's parsers — invite, records, relay requests and responses, base32 — round
// trip, and never throw on anything a peer or a paste can hand them (seeded fast-check).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import encodeQR from 'qr';
import decodeQR from 'qr/decode.js';
import { base32Decode, base32Encode } from '../../src/lobby/base32.js';
import { decodeInvite, encodeInvite, inviteLink, type Invite } from '../../src/lobby/invite.js';
import { ENTRY_PLAINTEXT_LEN, confirmPlaintextLen, decodeConfirm, decodeEntry, encodeConfirm, encodeEntry } from '../../src/lobby/records.js';
import {
  ENTRY_BOX_LEN, OP_CONFIRM, OP_CREATE, OP_ENTRY, OP_READ, STATUS, decodeRequest, decodeResponse, encodeRequest, encodeResponse,
  type Request, type Response,
} from '../../src/lobby/wire.js';
import { PeerKey } from '../../src/common/peer-key.js';
import { generateKeyPair } from '../../src/noise/index.js';

const seed = 20261124;
const bytes = (n: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ minLength: n, maxLength: n });

function sampleInvite(over: Partial<Invite> = {}): Invite {
  const relayKey = PeerKey.fromBytes(generateKeyPair().publicKey);
  return {
    relay: { publicKey: relayKey.text, host: 'relay.example.org', udpPort: 3478, httpPort: 8080 }, relayKey,
    lobbyId: new Uint8Array(16).fill(7), secret: new Uint8Array(16).fill(9), parties: 3, basePort: 11365, label: 'budget 2026', ...over,
  };
}

const inviteArb: fc.Arbitrary<Invite> = fc.record({
  key: bytes(32), lobbyId: bytes(16), secret: bytes(16), parties: fc.integer({ min: 2, max: 1000 }),
  host: fc.oneof(fc.domain(), fc.ipV4(), fc.constantFrom('::1', '2001:db8::7', 'fe80::1:2:3:4')),
  udpPort: fc.integer({ min: 1, max: 65535 }), httpPort: fc.integer({ min: 1, max: 65535 }), tls: fc.boolean(),
  label: fc.option(fc.string({ minLength: 1, maxLength: 64, unit: 'grapheme-composite' }).filter((s) => !/[\u0000-\u001f\u007f]/.test(s) && s.length <= 64), { nil: undefined }),
}).chain((r) => fc.integer({ min: 1, max: 65536 - r.parties }).map((basePort) => {
  const relayKey = PeerKey.fromBytes(r.key);
  const inv: Invite = {
    relay: { publicKey: relayKey.text, host: r.host, udpPort: r.udpPort, httpPort: r.httpPort, ...(r.tls ? { tls: true } : {}) }, relayKey,
    lobbyId: r.lobbyId, secret: r.secret, parties: r.parties, basePort,
  };
  if (r.label !== undefined) inv.label = r.label;
  return inv;
}));

describe('base32', () => {
  it('round trips any bytes and has one spelling per byte string', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
      const t = base32Encode(b);
      expect(t).toMatch(/^[A-Z2-7]*$/);
      expect(base32Decode(t)).toEqual(b);
    }), { seed, numRuns: 500 });
  });

  it('rejects characters outside the alphabet, impossible lengths and set spare bits', () => {
    expect(base32Decode('A1')).toBeNull();
    expect(base32Decode('a')).toBeNull();
    expect(base32Decode('AAA')).toBeNull(); // 15 bits: no byte string has 3 characters
    expect(base32Decode('AD')).toBeNull(); // spare bits set
    expect(base32Decode('AE')).toEqual(Uint8Array.of(0x01));
    fc.assert(fc.property(fc.string({ maxLength: 60 }), (s) => { base32Decode(s); }), { seed, numRuns: 1000 });
  });
});

describe('invite', () => {
  it('round trips every valid invite, as text and as link, through white space and case', () => {
    fc.assert(fc.property(inviteArb, (inv) => {
      const text = encodeInvite(inv);
      expect(text).toMatch(/^MPYC[A-Z2-7]+$/);
      for (const form of [text, inviteLink(text), `  ${text.slice(0, 20)}\n${text.slice(20)}  `, inviteLink(text).toLowerCase()]) {
        const d = decodeInvite(form);
        expect(d.ok, JSON.stringify(d)).toBe(true);
        if (!d.ok) return;
        expect(d.value.relayKey.equals(inv.relayKey)).toBe(true);
        expect(d.value.relay).toEqual(inv.relay);
        expect(d.value.lobbyId).toEqual(inv.lobbyId);
        expect(d.value.secret).toEqual(inv.secret);
        expect([d.value.parties, d.value.basePort, d.value.label]).toEqual([inv.parties, inv.basePort, inv.label]);
      }
    }), { seed, numRuns: 300 });
  });

  it('any changed, dropped or added character is caught ("damaged"), never misread', () => {
    const text = encodeInvite(sampleInvite());
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
    fc.assert(fc.property(fc.integer({ min: 4, max: text.length - 1 }), fc.constantFrom(...alphabet), fc.constantFrom('replace', 'drop', 'insert'), (i, c, how) => {
      const bad = how === 'replace' ? text.slice(0, i) + c + text.slice(i + 1) : how === 'drop' ? text.slice(0, i) + text.slice(i + 1) : text.slice(0, i) + c + text.slice(i);
      if (bad === text) return;
      const d = decodeInvite(bad);
      expect(d.ok).toBe(false);
    }), { seed, numRuns: 1000 });
    expect(decodeInvite(text.slice(0, -3))).toMatchObject({ ok: false, error: expect.stringMatching(/damaged/) });
    expect(decodeInvite('hello')).toMatchObject({ ok: false, error: expect.stringMatching(/starts with MPYC/) });
  });

  it('never throws on arbitrary input', () => {
    fc.assert(fc.property(fc.string({ maxLength: 400 }), (s) => { decodeInvite(s); decodeInvite(`MPYC${s}`); }), { seed, numRuns: 2000 });
    fc.assert(fc.property(fc.uint8Array({ maxLength: 400 }), (b) => { decodeInvite(`MPYC${base32Encode(b)}`); }), { seed, numRuns: 2000 });
  });

  it('a plain relay\'s invite is version 1 (what earlier agents read); a TLS relay\'s is version 2 with its flag', () => {
    const raw = (text: string): Buffer => Buffer.from(base32Decode(text.slice(4))!);
    const reseal = (body: Buffer): string => `MPYC${base32Encode(Buffer.concat([body, createHash('sha256').update(body).digest().subarray(0, 4)]))}`;
    const plain = sampleInvite();
    const v1 = raw(encodeInvite(plain));
    expect(v1[0]).toBe(1);
    const tlsInv: Invite = { ...plain, relay: { ...plain.relay, tls: true } };
    const v2 = raw(encodeInvite(tlsInv));
    expect([v2[0], v2[73], v2.length]).toEqual([2, 0x01, v1.length + 1]);
    const d = decodeInvite(reseal(v2.subarray(0, -4)));
    expect(d.ok && d.value.relay).toEqual(tlsInv.relay);
    // an unknown flag, a version-2 invite with no flag, an unknown version: refused with a reason
    const body = Buffer.from(v2.subarray(0, -4));
    body[73] = 0x03;
    expect(decodeInvite(reseal(body))).toMatchObject({ ok: false, error: expect.stringMatching(/flags 0x3 are not known/) });
    body[73] = 0;
    expect(decodeInvite(reseal(body))).toMatchObject({ ok: false, error: expect.stringMatching(/damaged/) });
    body[73] = 1; body[0] = 3;
    expect(decodeInvite(reseal(body))).toMatchObject({ ok: false, error: expect.stringMatching(/version 3 is not supported.*update/) });
  });

  it('refuses what a session file could not hold', () => {
    expect(() => encodeInvite(sampleInvite({ parties: 1 }))).toThrow(/parties/);
    expect(() => encodeInvite(sampleInvite({ basePort: 65534 }))).toThrow(/65535/);
    expect(() => encodeInvite(sampleInvite({ label: 'a\nb' }))).toThrow(/control/);
    const noHttp = sampleInvite();
    expect(() => encodeInvite({ ...noHttp, relay: { ...noHttp.relay, httpPort: undefined as unknown as number } })).toThrow(/HTTP port/);
  });

  it('the terminal QR code decodes to the invite', () => {
    const text = encodeInvite(sampleInvite());
    const grid = encodeQR(text, 'raw', { ecc: 'medium' });
    const scale = 4;
    const border = 4;
    const size = (grid.length + 2 * border) * scale;
    const data = new Uint8Array(size * size * 3).fill(255);
    grid.forEach((row, y) => row.forEach((dark, x) => {
      if (!dark) return;
      for (let dy = 0; dy < scale; dy++) for (let dx = 0; dx < scale; dx++) {
        data.fill(0, (((y + border) * scale + dy) * size + (x + border) * scale + dx) * 3, (((y + border) * scale + dy) * size + (x + border) * scale + dx) * 3 + 3);
      }
    }));
    expect(decodeQR({ width: size, height: size, data })).toBe(text);
    expect(encodeQR(text, 'ascii', { ecc: 'medium' }).split('\n').length).toBeLessThan(40);
  });
});

describe('records', () => {
  it('entries round trip; any other length, padding or bad UTF-8 is refused', () => {
    fc.assert(fc.property(bytes(32), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
      fc.option(fc.string({ minLength: 1, maxLength: 64 }).filter((s) => !/[\u0000-\u001f\u007f]/.test(s)), { nil: undefined }), (publicKey, joinedAt, name) => {
        const e = encodeEntry({ publicKey, joinedAt, ...(name !== undefined ? { name } : {}) });
        expect(e.length).toBe(ENTRY_PLAINTEXT_LEN);
        const d = decodeEntry(e);
        expect(d).toEqual({ publicKey, joinedAt, ...(name !== undefined ? { name } : {}) });
        const padded = new Uint8Array(e);
        padded[ENTRY_PLAINTEXT_LEN - 1] = 1;
        if (Buffer.byteLength(name ?? '') < 192) expect(decodeEntry(padded)).toBeNull();
      }), { seed, numRuns: 300 });
    const e = encodeEntry({ publicKey: new Uint8Array(32), joinedAt: 1, name: 'ab' });
    const badUtf8 = new Uint8Array(e);
    badUtf8[41] = 0xff;
    expect(decodeEntry(badUtf8)).toBeNull();
    expect(decodeEntry(e.subarray(1))).toBeNull();
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (b) => { decodeEntry(b); }), { seed, numRuns: 2000 });
  });

  it('confirmations round trip for their roster size only', () => {
    const c = { fileHash: new Uint8Array(32).fill(1), proofs: [new Uint8Array(16).fill(2), new Uint8Array(16).fill(3)] };
    const b = encodeConfirm(c);
    expect(b.length).toBe(confirmPlaintextLen(3));
    expect(decodeConfirm(b, 3)).toEqual(c);
    expect(decodeConfirm(b, 4)).toBeNull();
    expect(decodeConfirm(b, 2)).toBeNull();
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), fc.integer({ min: 0, max: 20 }), (x, m) => { decodeConfirm(x, m); }), { seed, numRuns: 2000 });
  });
});

describe('relay requests and responses', () => {
  const recordArb = fc.record({ tag: bytes(16), box: fc.uint8Array({ minLength: 1, maxLength: 600 }) });
  const requestArb: fc.Arbitrary<Request> = fc.oneof(
    fc.record({ op: fc.constant(OP_CREATE), lobbyId: bytes(16), capacity: fc.integer({ min: 0, max: 65535 }), ttlS: fc.integer({ min: 0, max: 2 ** 32 - 1 }), verifier: bytes(16) }),
    fc.record({ op: fc.constantFrom(OP_ENTRY, OP_CONFIRM), lobbyId: bytes(16), record: recordArb }),
    fc.record({ op: fc.constant(OP_READ), lobbyId: bytes(16), fromEntry: fc.integer({ min: 0, max: 65535 }), fromConfirm: fc.integer({ min: 0, max: 65535 }) }),
  ) as fc.Arbitrary<Request>;

  it('requests round trip', () => {
    fc.assert(fc.property(requestArb, (r) => { expect(decodeRequest(encodeRequest(r))).toEqual(r); }), { seed, numRuns: 500 });
  });

  it('responses round trip, and a truncated or extended response is refused', () => {
    const respArb: fc.Arbitrary<Response> = fc.oneof(
      fc.record({
        status: fc.constantFrom(STATUS.OK, STATUS.CREATED),
        view: fc.record({
          capacity: fc.integer({ min: 0, max: 65535 }), secondsLeft: fc.integer({ min: 0, max: 2 ** 32 - 1 }), verifier: bytes(16),
          entriesHeld: fc.integer({ min: 0, max: 65535 }), confirmsHeld: fc.integer({ min: 0, max: 65535 }),
          entries: fc.array(recordArb, { maxLength: 5 }), confirms: fc.array(recordArb, { maxLength: 5 }),
        }),
      }),
      fc.record({ status: fc.integer({ min: 2, max: 10 }) }),
    ) as fc.Arbitrary<Response>;
    fc.assert(fc.property(respArb, (r) => {
      const b = encodeResponse(r);
      expect(decodeResponse(b)).toEqual(r);
      expect(decodeResponse(b.subarray(0, b.length - 1))).toBeNull();
      expect(decodeResponse(Buffer.concat([b, Uint8Array.of(0)]))).toBeNull();
    }), { seed, numRuns: 500 });
  });

  it('never throw on arbitrary bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 700 }), (b) => {
      decodeRequest(b);
      decodeResponse(b);
      decodeRequest(Buffer.concat([Uint8Array.of(1, b[0]! % 5), b]));
      decodeResponse(Buffer.concat([Uint8Array.of(1, 0), b]));
    }), { seed, numRuns: 3000 });
  });

  it('sizes: an entry request is 299 bytes', () => {
    expect(encodeRequest({ op: OP_ENTRY, lobbyId: new Uint8Array(16), record: { tag: new Uint8Array(16), box: new Uint8Array(ENTRY_BOX_LEN) } }).length).toBe(299);
  });
});
