// RelayClient.sendInPlace: the SEND header is written into the payload's headroom (no
// copy of the payload), the relay forwards it like any SEND; without headroom it copies.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { DEFAULT_MAX_PAYLOAD, FRAME_SEND, REG_TOKEN_SIZE, SEND_HEADER_SIZE } from '../../src/relay/wire.js';
import { startRelay, startAgent, registered, waitFor, type Relay, type Agent } from './helpers.js';

describe('relay client: SEND built in the payload headroom', () => {
  let relay: Relay;
  const agents: Agent[] = [];
  beforeAll(async () => { relay = await startRelay(); });
  afterAll(async () => { for (const a of agents) a.close(); await relay.server.stop(false); });

  for (const transport of ['udp', 'ws'] as const) {
    it(`${transport}: the header goes into the room before the payload and the peer gets the payload`, async () => {
      const a = await startAgent(relay, transport);
      const b = await startAgent(relay, 'udp');
      agents.push(a, b);
      await Promise.all([registered(a), registered(b)]);
      const got: Buffer[] = [];
      b.client.on('packet', (k, p) => { if (k === a.keyB64) got.push(Buffer.from(p)); });

      const memory = new Uint8Array(SEND_HEADER_SIZE + 100 + 7);
      const payload = memory.subarray(SEND_HEADER_SIZE, SEND_HEADER_SIZE + 100).fill(0x5a);
      expect(a.client.sendInPlace(b.key.publicKey, payload)).toBe(true);
      // written in place: the frame is the headroom + the payload
      expect(memory[0]).toBe(FRAME_SEND);
      expect(memory.subarray(1 + REG_TOKEN_SIZE, SEND_HEADER_SIZE)).toEqual(b.key.publicKey);
      // no headroom: sent all the same, as a copy (nothing before the payload is touched)
      const bare = new Uint8Array(20).fill(0x33);
      expect(a.client.sendInPlace(b.key.publicKey, bare)).toBe(true);
      await waitFor(() => got.length === 2, 5000, 'both packets');
      expect(got[0]).toEqual(Buffer.alloc(100, 0x5a));
      expect(got[1]).toEqual(Buffer.alloc(20, 0x33));
    });
  }

  it('refuses like send(): not registered, or larger than the relay carries', async () => {
    const a = await startAgent(relay, 'udp');
    agents.push(a);
    const memory = new Uint8Array(SEND_HEADER_SIZE + 10);
    expect(a.client.sendInPlace(new Uint8Array(32), memory.subarray(SEND_HEADER_SIZE))).toBe(false);
    await registered(a);
    const big = new Uint8Array(SEND_HEADER_SIZE + DEFAULT_MAX_PAYLOAD + 1);
    expect(a.client.sendInPlace(new Uint8Array(32), big.subarray(SEND_HEADER_SIZE))).toBe(false);
    expect(a.client.stats.dropped).toBe(2);
  });
});
