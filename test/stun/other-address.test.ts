// RFC 5780 OTHER-ADDRESS in the codec's parse: read in MAPPED-ADDRESS form wherever it
// sits among the attributes, ignored when malformed, never a throw. The agent's STUN rounds
// and netcheck both take it from StunClient.binding(), which returns this parse's value.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isIP } from 'node:net';
import { ATTR_OTHER_ADDRESS, BINDING_SUCCESS, STUN_MAGIC_COOKIE, StunClient, encodeAddressValue, encodeBindingSuccess, parseStun, stunAddressOf } from '../../src/stun/index.js';

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

describe('OTHER-ADDRESS (RFC 5780 §7.4)', () => {
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


describe('StunClient.binding(): the answer with the server\'s other endpoint', () => {
  it('returns OTHER-ADDRESS beside the mapped address when the answer names one, and only then', async () => {
    let req: Uint8Array | undefined;
    const c = new StunClient({ send: (d) => { req = d; } });
    const txOf = (): Uint8Array => { const tx = parseStun(req!); if (!tx.ok) throw new Error('bad request'); return tx.message.transactionId; };
    const mapped = { family: 'IPv4' as const, address: '203.0.113.7', port: 41641 };
    const withOther = c.binding(0);
    expect(c.handleDatagram(encodeBindingSuccess(txOf(), mapped, { family: 'IPv4', address: '198.51.100.9', port: 3479 }), 1)).toBe(true);
    await expect(withOther).resolves.toEqual({ mapped, other: { family: 'IPv4', address: '198.51.100.9', port: 3479 } });
    const without = c.binding(2);
    expect(c.handleDatagram(encodeBindingSuccess(txOf(), mapped), 3)).toBe(true);
    await expect(without).resolves.toEqual({ mapped });
    c.close();
  });
});
