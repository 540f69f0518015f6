// NAT mapping behaviour from STUN answers (nat-type.ts), the inner NAT and PATH messages
// that tell a peer about it and about our path (inner.ts), and the mechanism status shows
// for a direct path (mechanism.ts).
import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { classifyMapping, NatTypeTracker } from '../../src/agent/nat-type.js';
import { decodeInner, encodeNat, encodePath, INNER_NAT, INNER_PATH } from '../../src/agent/inner.js';
import { localMechanism, pathMechanism } from '../../src/agent/mechanism.js';
import { cluster, waitFor, type Cluster } from './helpers.js';

const R1 = '198.18.1.2:3478';
const R2 = '198.18.2.2:3478';

describe('mapping behaviour', () => {
  it('one STUN endpoint cannot tell; two that see one address:port mean endpoint-independent, two that differ dependent', () => {
    expect(classifyMapping([])).toBe('unknown');
    expect(classifyMapping([{ server: R1, reflexive: '203.0.113.5:4000' }])).toBe('unknown');
    // the same server twice is still one endpoint
    expect(classifyMapping([{ server: R1, reflexive: '203.0.113.5:4000' }, { server: R1, reflexive: '203.0.113.5:4001' }])).toBe('unknown');
    expect(classifyMapping([{ server: R1, reflexive: '203.0.113.5:4000' }, { server: R2, reflexive: '203.0.113.5:4000' }])).toBe('independent');
    expect(classifyMapping([{ server: R1, reflexive: '203.0.113.5:4000' }, { server: R2, reflexive: '203.0.113.5:4001' }])).toBe('dependent');
    // another public address for another destination is dependent too
    expect(classifyMapping([{ server: R1, reflexive: '203.0.113.5:4000' }, { server: R2, reflexive: '203.0.113.6:4000' }])).toBe('dependent');
  });

  it('the tracker compares answers of one round only, reports a change once, keeps its verdict through a round with one answer', () => {
    const t = new NatTypeTracker();
    expect(t.get(4)).toBe('unknown');
    expect(t.observe(4, 1, { server: R1, reflexive: 'a:1' })).toBe(false);
    // round 2 starts: round 1's answer is not compared with round 2's
    expect(t.observe(4, 2, { server: R2, reflexive: 'a:2' })).toBe(false);
    expect(t.get(4)).toBe('unknown');
    expect(t.observe(4, 1, { server: R1, reflexive: 'a:1' })).toBe(false); // a late answer of an old round
    expect(t.observe(4, 2, { server: R1, reflexive: 'a:3' })).toBe(true);
    expect(t.get(4)).toBe('dependent');
    expect(t.get(6)).toBe('unknown');
    // round 3: only one relay answers — the verdict stands
    expect(t.observe(4, 3, { server: R1, reflexive: 'a:9' })).toBe(false);
    expect(t.get(4)).toBe('dependent');
    // round 4: the same verdict is no change
    t.observe(4, 4, { server: R1, reflexive: 'a:5' });
    expect(t.observe(4, 4, { server: R2, reflexive: 'a:6' })).toBe(false);
    // a new network: both see one port now
    t.observe(4, 5, { server: R1, reflexive: 'b:7' });
    expect(t.observe(4, 5, { server: R2, reflexive: 'b:7' })).toBe(true);
    expect(t.get(4)).toBe('independent');
    // IPv6 is tracked on its own
    t.observe(6, 5, { server: '[2001:db8::1]:3478', reflexive: '[2001:db8::5]:7' });
    expect(t.observe(6, 5, { server: '[2001:db8::2]:3478', reflexive: '[2001:db8::5]:7' })).toBe(true);
    expect(t.get(6)).toBe('independent');
  });
});

describe('inner NAT and PATH', () => {
  it('round trip; unknown values decode as unknown / no report; wrong lengths are dropped with a reason', () => {
    for (const v4 of ['unknown', 'independent', 'dependent'] as const) {
      for (const v6 of ['unknown', 'independent', 'dependent'] as const) expect(decodeInner(encodeNat(v4, v6))).toEqual({ type: 'nat', v4, v6 });
    }
    expect([...encodeNat('independent', 'dependent')]).toEqual([INNER_NAT, 1, 2]);
    for (const m of ['lan', 'stun', 'ipv6', 'port-mapping', 'birthday', undefined] as const) expect(decodeInner(encodePath(m))).toEqual({ type: 'path', mechanism: m });
    expect([...encodePath('birthday')]).toEqual([INNER_PATH, 5]);
    expect(decodeInner(new Uint8Array([INNER_NAT, 7, 200]))).toEqual({ type: 'nat', v4: 'unknown', v6: 'unknown' });
    expect(decodeInner(new Uint8Array([INNER_PATH, 99]))).toEqual({ type: 'path', mechanism: undefined });
    expect(decodeInner(new Uint8Array([INNER_NAT, 1]))).toEqual({ type: 'invalid', reason: 'nat_length' });
    expect(decodeInner(new Uint8Array([INNER_NAT, 1, 1, 1]))).toEqual({ type: 'invalid', reason: 'nat_length' });
    expect(decodeInner(new Uint8Array([INNER_PATH]))).toEqual({ type: 'invalid', reason: 'path_length' });
    expect(decodeInner(new Uint8Array([INNER_PATH, 1, 0]))).toEqual({ type: 'invalid', reason: 'path_length' });
  });

  it('never throws on any NAT or PATH body', () => {
    fc.assert(fc.property(fc.constantFrom(INNER_NAT, INNER_PATH), fc.uint8Array({ maxLength: 8 }), (t, body) => {
      const d = decodeInner(new Uint8Array([t, ...body]));
      expect(['nat', 'path', 'invalid']).toContain(d.type);
    }), { numRuns: 500 });
  });
});

describe('mechanism of a direct path', () => {
  it('from the address and how it was found', () => {
    expect(localMechanism('192.168.1.5', 'interface')).toBe('lan');
    expect(localMechanism('fd00::5', 'interface')).toBe('lan');
    expect(localMechanism('127.0.0.1', 'interface')).toBe('lan');
    expect(localMechanism('2001:db8::5', 'stun')).toBe('ipv6');
    expect(localMechanism('2001:db8::5', 'observed')).toBe('ipv6');
    expect(localMechanism('198.18.1.2', 'stun')).toBe('stun');
    expect(localMechanism('198.18.1.2', 'observed')).toBe('stun');
    expect(localMechanism('198.18.1.2', 'portmap')).toBe('port-mapping');
    expect(localMechanism('198.18.1.2', 'birthday')).toBe('birthday');
  });

  it('a peer that reports a one-sided mechanism (its router mapping, its birthday sockets) names it for both sides; others do not override', () => {
    expect(pathMechanism('stun', 'port-mapping')).toBe('port-mapping');
    expect(pathMechanism('stun', 'birthday')).toBe('birthday');
    expect(pathMechanism('stun', 'lan')).toBe('stun');
    expect(pathMechanism('stun', undefined)).toBe('stun');
    expect(pathMechanism('birthday', 'stun')).toBe('birthday');
    expect(pathMechanism('ipv6', 'stun')).toBe('ipv6');
  });
});

describe('agents learn and exchange their mapping behaviour (loopback: no NAT)', () => {
  let c: Cluster | undefined;
  afterEach(async () => { await c?.stopAll(); c = undefined; });

  it('two relays: each agent sees one address:port from both, says endpoint-independent, and its peer shows it', async () => {
    c = await cluster(2, { relays: 2 });
    for (let i = 0; i < 2; i++) await c.startAgent(i);
    const cl = c;
    await waitFor(() => cl.parties.every((p) => {
      const s = p.agent!.status();
      return s.mapping?.v4 === 'independent' && s.peers[0]!.mapping?.v4 === 'independent';
    }), 10_000, 'mapping behaviour known and told');
    expect(cl.parties[0]!.agent!.status().mapping?.v6).toBe('unknown'); // the relays have no IPv6 address
  });

  it('one relay with a second STUN port (OTHER-ADDRESS): two endpoints after all — endpoint-independent on both sides', async () => {
    c = await cluster(2, { relayOptions: { stunAltPort: 0 } });
    expect(c.relays[0]!.stunAltPort).toBeGreaterThan(0);
    for (let i = 0; i < 2; i++) await c.startAgent(i);
    const cl = c;
    await waitFor(() => cl.parties.every((p) => {
      const s = p.agent!.status();
      return s.mapping?.v4 === 'independent' && s.peers[0]!.mapping?.v4 === 'independent';
    }), 10_000, 'mapping behaviour from one relay\'s two STUN endpoints');
  });

  it('one relay: one STUN endpoint cannot tell — unknown on both sides', async () => {
    c = await cluster(2);
    for (let i = 0; i < 2; i++) await c.startAgent(i);
    const cl = c;
    await waitFor(() => cl.parties.every((p) => p.agent!.status().reflexiveAddress !== undefined && p.agent!.status().peers[0]!.state !== 'connecting'), 10_000, 'STUN answered, session up');
    await new Promise((r) => setTimeout(r, 300));
    for (const p of cl.parties) {
      expect(p.agent!.status().mapping).toEqual({ v4: 'unknown', v6: 'unknown' });
      expect(p.agent!.status().peers[0]!.mapping).toEqual({ v4: 'unknown', v6: 'unknown' });
    }
  });
});
