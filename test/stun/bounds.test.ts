// STUN as an amplifier: no answer is ever larger than the Binding success response the
// source would get (attack 9: unknown comprehension-required attributes, 24 B in -> 64 B
// out), and the codec round-trips and never throws on garbage (fast-check, seeded);
// RFC 5780 OTHER-ADDRESS read in MAPPED-ADDRESS form wherever it sits, ignored when malformed.
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { isIP } from 'node:net';
import {
  answerBindingRequest, bindingSuccessSize, encodeAddressValue, encodeBindingRequest, encodeBindingSuccess, parseStun, stunAddressOf,
  ATTR_OTHER_ADDRESS, BINDING_ERROR, BINDING_SUCCESS, STUN_MAGIC_COOKIE, type StunAddress,
} from '../../src/stun/codec.js';

const SEED = 0x57a9;
const v4: StunAddress = { family: 'IPv4', address: '203.0.113.7', port: 40000 };
const v6: StunAddress = { family: 'IPv6', address: '2001:db8::1', port: 40000 };

/** A Binding request carrying `types` as 0-length attributes (no fingerprint). */
function requestWith(types: number[]): Buffer {
  const base = Buffer.from(encodeBindingRequest(new Uint8Array(12).fill(1), { fingerprint: false }));
  const attrs = Buffer.concat(types.map((t) => Buffer.from([t >> 8, t & 0xff, 0, 0])));
  const m = Buffer.concat([base, attrs]);
  m.writeUInt16BE(attrs.length, 2);
  return m;
}

describe('STUN response bounds', () => {
  it('attack 9: a 24-byte request with an unknown required attribute gets at most the success size', () => {
    const req = requestWith([0x7f01]);
    expect(req.length).toBe(24);
    const r = answerBindingRequest(req, v4);
    expect(r.kind).toBe('reply');
    if (r.kind !== 'reply') return;
    expect(r.data.length).toBeLessThanOrEqual(bindingSuccessSize('IPv4'));
    const p = parseStun(r.data);
    expect(p.ok && p.message.type).toBe(BINDING_ERROR);
    expect(p.ok && p.message.errorCode).toBe(420);
    // header 20, ERROR-CODE (4 + 4, no reason phrase), then UNKNOWN-ATTRIBUTES listing 0x7f01
    const d = Buffer.from(r.data);
    expect([d.readUInt16BE(28), d.readUInt16BE(30), d.readUInt16BE(32)]).toEqual([0x000a, 2, 0x7f01]);
  });

  it('bindingSuccessSize is the real success size for each family', () => {
    for (const a of [v4, v6]) expect(encodeBindingSuccess(new Uint8Array(12), a).length).toBe(bindingSuccessSize(a.family));
  });

  it('property: whatever the unknown attributes, no answer exceeds the success size for the source family', () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: 0x0030, max: 0x7fff }), { minLength: 1, maxLength: 200 }), fc.boolean(), (types, six) => {
      const src = six ? v6 : v4;
      const r = answerBindingRequest(requestWith(types), src);
      if (r.kind === 'reply') expect(r.data.length).toBeLessThanOrEqual(bindingSuccessSize(src.family));
    }), { seed: SEED, numRuns: 500 });
  });

  it('fuzz: arbitrary datagrams never throw and never get an answer larger than the success size', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), fc.boolean(), (b, fix) => {
      if (fix && b.length >= 20) { b[0] = 0; b[1] = 1; b[4] = 0x21; b[5] = 0x12; b[6] = 0xa4; b[7] = 0x42; const n = (b.length - 20) & ~3; b[2] = n >> 8; b[3] = n & 0xff; }
      const r = answerBindingRequest(fix ? b.subarray(0, 20 + (((b.length - 20) >> 2) << 2)) : b, v4);
      if (r.kind === 'reply') expect(r.data.length).toBeLessThanOrEqual(bindingSuccessSize('IPv4'));
      else expect(typeof r.reason).toBe('string');
    }), { seed: SEED, numRuns: 5000 });
  });

  it('round trip: a success response parses back to the mapped address', () => {
    fc.assert(fc.property(fc.tuple(fc.integer({ min: 1, max: 254 }), fc.integer({ min: 0, max: 255 })), fc.integer({ min: 1, max: 65535 }), fc.uint8Array({ minLength: 12, maxLength: 12 }), ([a, b], port, tx) => {
      const addr: StunAddress = { family: 'IPv4', address: `10.${a}.${b}.1`, port };
      const p = parseStun(encodeBindingSuccess(tx, addr));
      expect(p.ok && p.message.mappedAddress).toEqual(addr);
    }), { seed: SEED, numRuns: 300 });
  });
});

/** A Binding success response carrying the given attributes (type, value), lengths as the wire has them. */
function message(attrs: [number, Uint8Array][]): Uint8Array {
  const body = attrs.map(([type, v]) => {
    const a = new Uint8Array(4 + ((v.length + 3) & ~3));
    new DataView(a.buffer).setUint16(0, type);
    new DataView(a.buffer).setUint16(2, v.length);
    a.set(v, 4);
    return a;
  });
  const len = body.reduce((n, a) => n + a.length, 0);
  const m = new Uint8Array(20 + len);
  const dv = new DataView(m.buffer);
  dv.setUint16(0, BINDING_SUCCESS);
  dv.setUint16(2, len);
  dv.setUint32(4, STUN_MAGIC_COOKIE);
  let off = 20;
  for (const a of body) { m.set(a, off); off += a.length; }
  return m;
}

const txid = new Uint8Array(12);
const plain = (address: string, port: number): Uint8Array => encodeAddressValue(stunAddressOf(address, port), false, txid);

/** OTHER-ADDRESS as the codec parses it, if present and well formed */
function otherAddressOf(msg: Uint8Array): { address: string; port: number } | undefined {
  const p = parseStun(msg);
  const o = p.ok ? p.message.otherAddress : undefined;
  return o && { address: o.address, port: o.port };
}

describe('OTHER-ADDRESS (RFC 5780): the relay\'s second STUN endpoint', () => {
  const other4: StunAddress = { family: 'IPv4', address: '198.51.100.9', port: 3479 };
  const other6: StunAddress = { family: 'IPv6', address: '2001:db8::9', port: 3479 };

  it('a success carries it for a source of its family only, and parses back', () => {
    const tx = new Uint8Array(12).fill(3);
    const p = parseStun(encodeBindingSuccess(tx, v4, other4));
    expect(p.ok && p.message.mappedAddress).toEqual(v4);
    expect(p.ok && p.message.otherAddress).toEqual(other4);
    const p6 = parseStun(encodeBindingSuccess(tx, v6, other6));
    expect(p6.ok && p6.message.otherAddress).toEqual(other6);
    // an IPv6 source is not told an IPv4 endpoint
    const mixed = encodeBindingSuccess(tx, v6, other4);
    expect(mixed.length).toBe(bindingSuccessSize('IPv6'));
    const pm = parseStun(mixed);
    expect(pm.ok && pm.message.otherAddress).toBeUndefined();
    for (const [a, o] of [[v4, other4], [v6, other6]] as const) expect(encodeBindingSuccess(tx, a, o).length).toBe(bindingSuccessSize(a.family, true));
  });

  it('a malformed OTHER-ADDRESS is ignored, the mapped address still read', () => {
    const tx = new Uint8Array(12).fill(4);
    const m = Buffer.from(encodeBindingSuccess(tx, v4, other4));
    m[20 + 12 + 5] = 7; // OTHER-ADDRESS's family byte: neither IPv4 nor IPv6
    m.writeUInt32BE(0, m.length - 4); // and a fingerprint that no longer matters: drop it
    const noFp = Buffer.from(m.subarray(0, m.length - 8)); noFp.writeUInt16BE(noFp.length - 20, 2);
    const p = parseStun(noFp);
    expect(p.ok && p.message.mappedAddress).toEqual(v4);
    expect(p.ok && p.message.otherAddress).toBeUndefined();
  });

  it('the bound with OTHER-ADDRESS: no answer exceeds that success, for any unknown attributes', () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: 0x0030, max: 0x7fff }), { minLength: 1, maxLength: 200 }), fc.boolean(), (types, six) => {
      const [src, other] = six ? [v6, other6] : [v4, other4];
      const r = answerBindingRequest(requestWith(types), src, other);
      if (r.kind === 'reply') expect(r.data.length).toBeLessThanOrEqual(bindingSuccessSize(src.family, true));
    }), { seed: SEED, numRuns: 300 });
    const ok = answerBindingRequest(Buffer.from(encodeBindingRequest(new Uint8Array(12))), v4, other4);
    expect(ok.kind === 'reply' && ok.data.length).toBe(52);
  });

  it('is read in MAPPED-ADDRESS form, IPv4 and IPv6, after other attributes', () => {
    const mapped = encodeAddressValue(stunAddressOf('203.0.113.7', 41641), true, txid);
    expect(otherAddressOf(message([[0x0020, mapped], [ATTR_OTHER_ADDRESS, plain('198.51.100.9', 3479)]]))).toEqual({ address: '198.51.100.9', port: 3479 });
    expect(otherAddressOf(message([[0x8022, new Uint8Array(5)], [ATTR_OTHER_ADDRESS, plain('2001:db8::9', 3479)]]))).toEqual({ address: '2001:db8::9', port: 3479 });
    expect(otherAddressOf(message([[0x0020, mapped]]))).toBeUndefined();
  });

  it('a malformed one is ignored: wrong family, wrong length, truncated attribute', () => {
    const v4 = plain('198.51.100.9', 3479);
    const badFamily = Uint8Array.from(v4); badFamily[1] = 3;
    expect(otherAddressOf(message([[ATTR_OTHER_ADDRESS, badFamily]]))).toBeUndefined();
    expect(otherAddressOf(message([[ATTR_OTHER_ADDRESS, v4.subarray(0, 6)]]))).toBeUndefined();
    const m = message([[ATTR_OTHER_ADDRESS, v4]]);
    expect(otherAddressOf(m.subarray(0, m.length - 2))).toBeUndefined();
  });

  it('fuzz: never throws on any bytes, and any address it returns is a valid endpoint', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 120 }), fc.boolean(), (tail, asAttr) => {
      const m = asAttr ? message([[ATTR_OTHER_ADDRESS, tail]]) : Uint8Array.from([...new Uint8Array(20), ...tail]);
      const r = otherAddressOf(m);
      return r === undefined || (isIP(r.address) !== 0 && Number.isInteger(r.port) && r.port >= 0 && r.port <= 65535);
    }), { numRuns: 3000, seed: 5780 });
  });
});
