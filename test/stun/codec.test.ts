import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import {
  parseStun, encodeBindingRequest, encodeBindingSuccess, encodeBindingError, answerBindingRequest,
  looksLikeStun, crc32, newTransactionId, stunAddressOf, BINDING_REQUEST, BINDING_SUCCESS, BINDING_ERROR,
  ATTR_XOR_MAPPED_ADDRESS,
} from '../../src/stun/codec.js';
import { StunClient, StunTimeoutError } from '../../src/stun/client.js';

describe('STUN codec', () => {
  it('crc32 matches the standard check value', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
  });

  it('encodes a Binding request with header, cookie, fingerprint', () => {
    const tx = newTransactionId();
    const req = encodeBindingRequest(tx);
    expect(req.length).toBe(28);
    expect(looksLikeStun(req)).toBe(true);
    const p = parseStun(req);
    expect(p.ok).toBe(true);
    if (!p.ok) return;
    expect(p.message.type).toBe(BINDING_REQUEST);
    expect(Buffer.from(p.message.transactionId).equals(Buffer.from(tx))).toBe(true);
    expect(p.message.hasFingerprint).toBe(true);
  });

  it('XOR-MAPPED-ADDRESS follows RFC 5769 §2.2 test vector (IPv4 192.0.2.1:32853)', () => {
    // value from the RFC 5769 sample response: port 0xa147 ^ 0x2112, addr e1 12 a6 43 ^ cookie
    const tx = Buffer.from('b7e7a701bc34d686fa87dfae', 'hex');
    const resp = encodeBindingSuccess(tx, { family: 'IPv4', address: '192.0.2.1', port: 32853 });
    const i = Buffer.from(resp).indexOf(Buffer.from([0x00, 0x20, 0x00, 0x08]));
    expect(Buffer.from(resp.subarray(i + 4, i + 12)).toString('hex')).toBe('0001a147e112a643');
  });

  it('XOR-MAPPED-ADDRESS follows RFC 5769 §2.3 test vector (IPv6)', () => {
    const tx = Buffer.from('b7e7a701bc34d686fa87dfae', 'hex');
    const resp = encodeBindingSuccess(tx, { family: 'IPv6', address: '2001:db8:1234:5678:11:2233:4455:6677', port: 32853 });
    const i = Buffer.from(resp).indexOf(Buffer.from([0x00, 0x20, 0x00, 0x14]));
    expect(Buffer.from(resp.subarray(i + 4, i + 24)).toString('hex')).toBe('0002a1470113a9faa5d3f179bc25f4b5bed2b9d9');
    const p = parseStun(resp);
    expect(p.ok && p.message.mappedAddress).toEqual({ family: 'IPv6', address: '2001:db8:1234:5678:11:2233:4455:6677', port: 32853 });
  });

  it('round-trips IPv4 and IPv6 mapped addresses', () => {
    fc.assert(fc.property(fc.ipV4(), fc.integer({ min: 0, max: 65535 }), (ip, port) => {
      const tx = newTransactionId();
      const p = parseStun(encodeBindingSuccess(tx, { family: 'IPv4', address: ip, port }));
      return p.ok && p.message.type === BINDING_SUCCESS && p.message.mappedAddress!.address === ip && p.message.mappedAddress!.port === port;
    }), { numRuns: 200 });
    for (const a of ['::1', '::', 'fe80::1', '2001:db8::', '1:2:3:4:5:6:7:8', '::ffff:0:1']) {
      const p = parseStun(encodeBindingSuccess(newTransactionId(), { family: 'IPv6', address: a, port: 1 }));
      expect(p.ok && p.message.mappedAddress!.address).toBe(a);
    }
  });

  it('maps an IPv4-mapped IPv6 source to IPv4', () => {
    expect(stunAddressOf('::ffff:10.1.2.3', 9)).toEqual({ family: 'IPv4', address: '10.1.2.3', port: 9 });
  });

  it('rejects bad fingerprint, bad length, no cookie, truncated attributes; never throws', () => {
    const req = Buffer.from(encodeBindingRequest(newTransactionId()));
    const fp = Buffer.from(req); fp[fp.length - 1] ^= 1;
    expect(parseStun(fp)).toEqual({ ok: false, reason: 'bad_fingerprint' });
    expect(parseStun(req.subarray(0, 24))).toEqual({ ok: false, reason: 'bad_length' });
    const nc = Buffer.from(req); nc[4] = 0;
    expect(parseStun(nc)).toEqual({ ok: false, reason: 'no_cookie' });
    const tr = Buffer.from(req); tr.writeUInt16BE(100, 22);
    expect(parseStun(tr).ok).toBe(false);
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (b) => { parseStun(b); return true; }), { numRuns: 2000 });
    // mutate valid messages byte by byte
    fc.assert(fc.property(fc.integer({ min: 0, max: 27 }), fc.integer({ min: 0, max: 255 }), (i, v) => {
      const m = Buffer.from(req); m[i] = v; parseStun(m); answerBindingRequest(m, { family: 'IPv4', address: '1.2.3.4', port: 5 }); return true;
    }), { numRuns: 1000 });
  });

  it('answers a request carrying an unknown comprehension-required attribute with 420', () => {
    const tx = newTransactionId();
    const base = Buffer.from(encodeBindingRequest(tx, { fingerprint: false }));
    const attr = Buffer.from([0x7f, 0x01, 0x00, 0x02, 0xaa, 0xbb, 0x00, 0x00]);
    const msg = Buffer.concat([base, attr]);
    msg.writeUInt16BE(8, 2);
    const r = answerBindingRequest(msg, { family: 'IPv4', address: '1.2.3.4', port: 5 });
    expect(r.kind).toBe('reply');
    if (r.kind !== 'reply') return;
    const p = parseStun(r.data);
    expect(p.ok && p.message.type).toBe(BINDING_ERROR);
    expect(p.ok && p.message.errorCode).toBe(420);
    // unknown comprehension-optional attributes are ignored
    const opt = Buffer.concat([base, Buffer.from([0x80, 0x55, 0x00, 0x00])]);
    opt.writeUInt16BE(4, 2);
    const r2 = answerBindingRequest(opt, { family: 'IPv4', address: '1.2.3.4', port: 5 });
    expect(r2.kind === 'reply' && r2.status).toBe('success');
  });

  it('drops responses and indications instead of answering them', () => {
    const resp = encodeBindingSuccess(newTransactionId(), { family: 'IPv4', address: '1.2.3.4', port: 5 });
    expect(answerBindingRequest(resp, { family: 'IPv4', address: '1.2.3.4', port: 5 }).kind).toBe('drop');
  });

  it('error responses carry class/number and UNKNOWN-ATTRIBUTES', () => {
    const e = encodeBindingError(newTransactionId(), 420, 'Unknown Attribute', [0x7f01]);
    const p = parseStun(e);
    expect(p.ok && p.message.errorCode).toBe(420);
    expect(p.ok && p.message.errorReason).toBe('Unknown Attribute');
    expect(ATTR_XOR_MAPPED_ADDRESS).toBe(0x20);
  });
});

describe('STUN client (sans-I/O)', () => {
  it('retransmits with doubling RTO, then times out', async () => {
    const sent: number[] = [];
    let now = 0;
    const c = new StunClient({ send: () => sent.push(now), rtoMs: 100, maxTransmissions: 3 });
    const p = c.request(now);
    expect(c.nextDeadline()).toBe(100);
    now = 100; c.tick(now);
    expect(c.nextDeadline()).toBe(300);
    now = 300; c.tick(now);
    expect(c.nextDeadline()).toBe(700);
    now = 700; c.tick(now);
    await expect(p).rejects.toBeInstanceOf(StunTimeoutError);
    expect(sent).toEqual([0, 100, 300]);
    expect(c.nextDeadline()).toBeUndefined();
  });

  it('matches the transaction id and ignores strangers', async () => {
    let req: Uint8Array | undefined;
    const c = new StunClient({ send: (d) => { req = d; } });
    const p = c.request(0);
    const other = encodeBindingSuccess(newTransactionId(), { family: 'IPv4', address: '9.9.9.9', port: 9 });
    expect(c.handleDatagram(other, 1)).toBe(false);
    const tx = parseStun(req!);
    if (!tx.ok) throw new Error('bad request');
    expect(c.handleDatagram(encodeBindingSuccess(tx.message.transactionId, { family: 'IPv4', address: '5.6.7.8', port: 4242 }), 2)).toBe(true);
    await expect(p).resolves.toEqual({ family: 'IPv4', address: '5.6.7.8', port: 4242 });
  });

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
