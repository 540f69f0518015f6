// The UDP endpoint's address lookup (src/agent/udp-endpoint.ts): dgram resolves every
// destination, and Node's resolver answers even an IP literal on a later tick; ours answers
// a literal in the same call, so a datagram leaves while the code that sent it still runs.
import { describe, it, expect } from 'vitest';
import { literalFirstLookup } from '../../src/agent/udp-endpoint.js';

function lookupNow(host: string): { sync: boolean; result: Promise<{ address: string; family: number }> } {
  let sync = false;
  let inCall = true;
  const result = new Promise<{ address: string; family: number }>((resolve, reject) => {
    literalFirstLookup(host, 0, (err, address, family) => {
      sync = inCall;
      if (err) reject(err); else resolve({ address, family });
    });
  });
  inCall = false;
  return { sync, result };
}

describe('literalFirstLookup', () => {
  it('answers IPv4, IPv6 and zoned IPv6 literals within the call', async () => {
    for (const [host, family] of [['127.0.0.1', 4], ['::1', 6], ['fe80::1%lo', 6]] as const) {
      const r = lookupNow(host);
      expect(r.sync).toBe(true);
      expect(await r.result).toEqual({ address: host, family });
    }
  });

  it('hands a name to the resolver', async () => {
    const r = lookupNow('localhost');
    expect(r.sync).toBe(false);
    const { address } = await r.result;
    expect(['127.0.0.1', '::1']).toContain(address);
  });
});
