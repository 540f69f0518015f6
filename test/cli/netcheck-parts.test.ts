// netcheck's pure parts: the mapping classification,
// which proxy the WebSocket takes, the nearest relay.
import { describe, expect, it } from 'vitest';
import { classifyMapping, parseEndpoint, type StunProbe } from '../../src/agent/netcheck-stun.js';
import { proxyFor } from '../../src/relay/ws-proxy.js';
import { nearestRelay, type RelayCheck } from '../../src/agent/netcheck-report.js';

function probe(address: string, port: number, reflexive?: string): StunProbe {
  return { relay: 0, address, port, family: address.includes(':') ? 6 : 4, sent: 1, answered: reflexive ? 1 : 0, ...(reflexive ? { reflexive } : {}) };
}

describe('endpoint text back into its parts', () => {
  it('IPv4 and bracketed IPv6 (canonical); anything else, or a port above 65535, is null', () => {
    expect(parseEndpoint('203.0.113.7:41641')).toEqual({ address: '203.0.113.7', port: 41641 });
    expect(parseEndpoint('[2001:DB8:0::9]:3479')).toEqual({ address: '2001:db8::9', port: 3479 });
    for (const bad of ['203.0.113.7', '203.0.113.7:65536', '2001:db8::9:3479', '[2001:db8::9]', 'relay.example.org:3478', '']) expect(parseEndpoint(bad)).toBeNull();
  });
});

describe('mapping behaviour from the reflexive addresses', () => {
  it('one per destination: endpoint-dependent; the same from every destination: endpoint-independent; one endpoint or none: unknown', () => {
    expect(classifyMapping([probe('198.18.1.2', 3478, '203.0.113.7:1000'), probe('198.18.2.2', 3478, '203.0.113.7:1001')]))
      .toEqual({ mapping: 'endpoint-dependent', reason: '2 different reflexive addresses from 2 STUN endpoints', reflexive: ['203.0.113.7:1000', '203.0.113.7:1001'] });
    expect(classifyMapping([probe('198.18.1.2', 3478, '203.0.113.7:1000'), probe('198.18.1.2', 3479, '203.0.113.7:1000')]).mapping).toBe('endpoint-independent');
    // a port change alone is a different destination too (a relay's second port)
    expect(classifyMapping([probe('198.18.1.2', 3478, '203.0.113.7:1000'), probe('198.18.1.2', 3479, '203.0.113.7:1002')]).mapping).toBe('endpoint-dependent');
    expect(classifyMapping([probe('198.18.1.2', 3478, '203.0.113.7:1000'), probe('198.18.2.2', 3478)])).toMatchObject({ mapping: 'unknown', reason: 'one STUN endpoint' });
    expect(classifyMapping([probe('198.18.1.2', 3478)])).toMatchObject({ mapping: 'unknown', reason: 'no STUN answer' });
  });
});

describe('the proxy netcheck and the agent take (one rule, src/relay/ws-proxy.ts)', () => {
  const url = 'ws://relay.example.org:8080/relay';
  it('by scheme: HTTP_PROXY for ws:// and http://, HTTPS_PROXY for wss:// and https://, else ALL_PROXY; either case; empty counts as unset', () => {
    const both = { HTTPS_PROXY: 'http://a:1', HTTP_PROXY: 'http://b:1' };
    expect(proxyFor(url, undefined, both)).toBe('http://b:1');
    expect(proxyFor('http://relay.example.org:8080/lobby', undefined, both)).toBe('http://b:1');
    expect(proxyFor('wss://relay.example.org:443/relay', undefined, both)).toBe('http://a:1');
    expect(proxyFor('https://relay.example.org:443/lobby', undefined, both)).toBe('http://a:1');
    expect(proxyFor(url, undefined, { HTTPS_PROXY: 'http://a:1' })).toBeUndefined();
    expect(proxyFor(url, undefined, { http_proxy: '', ALL_PROXY: 'http://c:1' })).toBe('http://c:1');
    expect(proxyFor(url, undefined, { all_proxy: 'http://c:1' })).toBe('http://c:1');
    expect(proxyFor(url, undefined, {})).toBeUndefined();
  });
  it('NO_PROXY: a host, a domain suffix, a port-qualified entry or * bypasses it', () => {
    const p = { HTTP_PROXY: 'http://a:1' };
    for (const no of ['relay.example.org', '.example.org', 'example.org', 'relay.example.org:8080', '*', 'x.test, example.org']) expect(proxyFor(url, undefined, { ...p, NO_PROXY: no })).toBeUndefined();
    for (const no of ['other.org', 'ample.org', 'org.example', 'relay.example.org:9090']) expect(proxyFor(url, undefined, { ...p, no_proxy: no })).toBe('http://a:1');
    for (const no of ['::1', '[::1]:8080']) expect(proxyFor('ws://[::1]:8080/relay', undefined, { ...p, NO_PROXY: no })).toBeUndefined();
    expect(proxyFor('ws://[::1]:8080/relay', undefined, { ...p, NO_PROXY: '::2' })).toBe('http://a:1');
  });
});

describe('the nearest relay', () => {
  const check = (index: number, rtts: (number | undefined)[], openMs?: number, other = false): RelayCheck => ({
    index, address: `k@h${index}:1`, resolved: [],
    udp: rtts.map((rttMs, i) => ({ ...probe(`10.0.0.${i + 1}`, 1, rttMs === undefined ? undefined : '1.2.3.4:5'), ...(rttMs === undefined ? {} : { rttMs }), ...(other ? { other: true } : {}) })),
    ...(openMs === undefined ? {} : { websocket: { used: { url: 'ws://x', ok: true, openMs } } }),
  });
  it('by UDP round trip when any relay answered STUN (an OTHER-ADDRESS endpoint does not count), else by WebSocket open time', () => {
    expect(nearestRelay([check(0, [5, 3]), check(1, [4])])).toEqual({ relay: 0, rttMs: 3, over: 'udp' });
    expect(nearestRelay([check(0, [undefined], 1), check(1, [9], 50)])).toEqual({ relay: 1, rttMs: 9, over: 'udp' });
    expect(nearestRelay([check(0, [0.1], undefined, true), check(1, [undefined], 7), check(2, [], 4)])).toEqual({ relay: 2, rttMs: 4, over: 'websocket' });
    expect(nearestRelay([check(0, [undefined])])).toBeUndefined();
  });
});
