// NAT-PMP (RFC 6886) and PCP MAP (RFC 6887) wire formats of the lab's port-mapping
// probe: exact byte layouts, length-checked decoding that never throws.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  decodeNatPmpAddressResponse, decodeNatPmpMapResponse, decodePcpMapResponse, encodeNatPmpAddressRequest,
  encodeNatPmpMapRequest, encodePcpMapRequest,
} from '../../src/lab/portmap-wire.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const fromHex = (h: string): Uint8Array => new Uint8Array(Buffer.from(h.replace(/\s+/g, ''), 'hex'));

describe('NAT-PMP', () => {
  it('requests: external address (2 B) and map UDP (12 B) as RFC 6886 §3.2, §3.3 lay them out', () => {
    expect(hex(encodeNatPmpAddressRequest())).toBe('0000');
    // version 0, opcode 1 (UDP), reserved, internal 48000 = 0xbb80, suggested 50000 = 0xc350, lifetime 7200 s
    expect(hex(encodeNatPmpMapRequest(48000, 50000, 7200))).toBe('0001' + '0000' + 'bb80' + 'c350' + '00001c20');
    expect(hex(encodeNatPmpMapRequest(48000, 0, 0))).toBe('00010000bb80000000000000');
  });

  it('responses decode; wrong length, version or opcode is a typed failure', () => {
    expect(decodeNatPmpAddressResponse(fromHex('0080 0000 00000010 c6120102'))).toEqual({ ok: true, value: { result: 0, epoch: 16, externalAddress: '198.18.1.2' } });
    expect(decodeNatPmpMapResponse(fromHex('0081 0000 00000010 bb80 c350 00000e10'))).toEqual({ ok: true, value: { result: 0, epoch: 16, internalPort: 48000, externalPort: 50000, lifetimeSec: 3600 } });
    expect(decodeNatPmpMapResponse(fromHex('0081 0002 00000010 bb80 0000 00000000'))).toMatchObject({ ok: true, value: { result: 2 } });
    expect(decodeNatPmpMapResponse(fromHex('0081 0000 00000010 bb80 c350 0000'))).toEqual({ ok: false, reason: 'length 14, expected 16' });
    expect(decodeNatPmpMapResponse(fromHex('0181 0000 00000010 bb80 c350 00000e10'))).toEqual({ ok: false, reason: 'version 1' });
    expect(decodeNatPmpMapResponse(fromHex('0082 0000 00000010 bb80 c350 00000e10'))).toEqual({ ok: false, reason: 'opcode 130' });
    expect(decodeNatPmpAddressResponse(fromHex('0081 0000 00000010 c6120102'))).toEqual({ ok: false, reason: 'opcode 129' });
  });
});

describe('PCP MAP', () => {
  const nonce = fromHex('0102030405060708090a0b0c');

  it('request: 24-byte header + 36-byte MAP body as RFC 6887 §7.1 and §11.1', () => {
    const req = encodePcpMapRequest({ clientAddress: '10.9.0.10', nonce, internalPort: 48001, suggestedExternalPort: 0, lifetimeSec: 120 })!;
    expect(req).toHaveLength(60);
    expect(hex(req)).toBe(
      '02' + '01' + '0000' + '00000078' + '00000000000000000000ffff0a09000a' // version, R=0|MAP, reserved, lifetime, client IP
      + '0102030405060708090a0b0c' + '11' + '000000' + 'bb81' + '0000' // nonce, UDP, reserved, internal port, suggested port
      + '00000000000000000000ffff00000000', // suggested external address: none (::ffff:0.0.0.0)
    );
  });

  it('request refuses a client address that is not IPv4 and a nonce that is not 12 bytes', () => {
    const o = { clientAddress: '10.9.0.10', nonce, internalPort: 1, suggestedExternalPort: 0, lifetimeSec: 1 };
    for (const clientAddress of ['2001:db8::1', '10.9.0', '10.9.0.256', '']) expect(encodePcpMapRequest({ ...o, clientAddress })).toBeNull();
    expect(encodePcpMapRequest({ ...o, nonce: nonce.subarray(0, 11) })).toBeNull();
  });

  const response = (over: { version?: number; opcode?: number; result?: number; proto?: number; ext?: string; extra?: number } = {}): Uint8Array => fromHex(
    (over.version ?? 2).toString(16).padStart(2, '0') + (over.opcode ?? 0x81).toString(16).padStart(2, '0') + '00' + (over.result ?? 0).toString(16).padStart(2, '0')
    + '00000078' + '0000002a' + '00'.repeat(12)
    + '0102030405060708090a0b0c' + (over.proto ?? 17).toString(16).padStart(2, '0') + '000000' + 'bb81' + 'bb82'
    + (over.ext ?? '00000000000000000000ffffc6120902') + '00'.repeat(over.extra ?? 0),
  );

  it('response decodes (result, lifetime, epoch, nonce, ports, IPv4 external address); options after the body are allowed', () => {
    const want = { result: 0, lifetimeSec: 120, epoch: 42, nonce, internalPort: 48001, externalPort: 48002, externalAddress: '198.18.9.2' };
    expect(decodePcpMapResponse(response())).toEqual({ ok: true, value: want });
    expect(decodePcpMapResponse(response({ extra: 8 }))).toEqual({ ok: true, value: want });
    expect(decodePcpMapResponse(response({ result: 2 }))).toMatchObject({ ok: true, value: { result: 2 } });
  });

  it('response failures are typed: length, version, opcode, protocol, a non-IPv4 external address', () => {
    expect(decodePcpMapResponse(response().subarray(0, 56))).toEqual({ ok: false, reason: 'length 56' });
    expect(decodePcpMapResponse(response({ extra: 2 }))).toEqual({ ok: false, reason: 'length 62' });
    expect(decodePcpMapResponse(response({ version: 1 }))).toEqual({ ok: false, reason: 'version 1' });
    expect(decodePcpMapResponse(response({ opcode: 0x01 }))).toEqual({ ok: false, reason: 'opcode 1' });
    expect(decodePcpMapResponse(response({ proto: 6 }))).toEqual({ ok: false, reason: 'protocol 6' });
    expect(decodePcpMapResponse(response({ ext: '20010db8000000000000000000000001' }))).toEqual({ ok: false, reason: 'external address not IPv4-mapped' });
  });

  it('no decoder throws, whatever the bytes (seeded)', () => {
    // random bytes, and bytes behind a valid version/opcode so that the deeper checks run
    const prefixed = (head: number[], len: number) => fc.uint8Array({ minLength: len, maxLength: len + 8 }).map((b) => { b.set(head); return b; });
    const bytes = fc.oneof(fc.uint8Array({ maxLength: 128 }), prefixed([0, 0x80], 12), prefixed([0, 0x81], 16), prefixed([2, 0x81], 60));
    fc.assert(fc.property(bytes, (b) => {
      for (const d of [decodeNatPmpAddressResponse, decodeNatPmpMapResponse, decodePcpMapResponse]) {
        const r = d(b);
        expect(typeof r.ok).toBe('boolean');
      }
    }), { seed: 14, numRuns: 2000 });
  });
});
