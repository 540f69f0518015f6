// Frames up to the largest UDP datagram (MAX_FRAME_SIZE): forwarded whole over every pair
// of transports; above the relay's --max-payload dropped and counted; and the per-agent
// budgets count a large frame as the 1441-byte packets it is worth (limits.ts frameCost).
import { describe, it, expect, afterEach } from 'vitest';
import { startRelay, startAgent, registered, waitFor, type Relay, type Agent } from './helpers.js';
import { DEFAULT_MAX_PAYLOAD, MAX_FRAME_SIZE, SEND_HEADER_SIZE, encodeSend } from '../../src/relay/wire.js';
import { FRAME_COST_BYTES, frameCost } from '../../src/relay/limits.js';

let relay: Relay | undefined;
const agents: Agent[] = [];
afterEach(async () => {
  for (const a of agents.splice(0)) a.close();
  await relay?.server.stop(false);
  relay = undefined;
});

async function pair(r: Relay, ta: 'udp' | 'ws', tb: 'udp' | 'ws'): Promise<[Agent, Agent]> {
  const a = await startAgent(r, ta);
  const b = await startAgent(r, tb);
  agents.push(a, b);
  await Promise.all([registered(a), registered(b)]);
  return [a, b];
}

/** A SEND of `payloadBytes` from `a` to `b`, written by hand (the client refuses what it knows is too large). */
function rawSend(a: Agent, b: Agent, payloadBytes: number): void {
  const token = (a.client as unknown as { regToken: Uint8Array }).regToken;
  a.socket!.send(encodeSend(token, b.key.publicKey, new Uint8Array(payloadBytes).fill(7)), relay!.udpPort, '127.0.0.1');
}

describe('large relay frames', () => {
  it('the largest frame is the largest IPv4 UDP datagram; the default payload fills it', () => {
    expect(MAX_FRAME_SIZE).toBe(65_507);
    expect(SEND_HEADER_SIZE + DEFAULT_MAX_PAYLOAD).toBe(MAX_FRAME_SIZE);
  });

  for (const [ta, tb] of [['udp', 'udp'], ['ws', 'ws'], ['udp', 'ws'], ['ws', 'udp']] as const) {
    it(`${ta} -> ${tb}: a ${DEFAULT_MAX_PAYLOAD}-byte payload arrives whole`, async () => {
      relay = await startRelay();
      const [a, b] = await pair(relay, ta, tb);
      const got: Buffer[] = [];
      b.client.on('packet', (k, p) => { if (k === a.keyB64) got.push(Buffer.from(p)); });
      const payload = Buffer.alloc(DEFAULT_MAX_PAYLOAD);
      for (let i = 0; i < payload.length; i++) payload[i] = i & 0xff;
      expect(a.client.send(b.keyB64, payload)).toBe(true);
      await waitFor(() => got.length === 1, 5000, 'the large packet');
      expect(got[0]!.equals(payload)).toBe(true);
      expect(relay.server.counters.forwardedBytes).toBe(DEFAULT_MAX_PAYLOAD + 33);
    });
  }

  it('a relay with --max-payload N forwards N bytes and drops N + 1 as oversized', async () => {
    const n = 30_000;
    relay = await startRelay({ maxPayload: n });
    const [a, b] = await pair(relay, 'udp', 'udp');
    const sizes: number[] = [];
    b.client.on('packet', (_k, p) => sizes.push(p.length));
    rawSend(a, b, n + 1);
    rawSend(a, b, n);
    await waitFor(() => sizes.length === 1 && relay!.server.counters.drops.oversized === 1, 5000, 'one forwarded, one dropped');
    expect(sizes).toEqual([n]);
  });

  it('a frame costs one budget token per started 1441 bytes', () => {
    expect(frameCost(1)).toBe(1);
    expect(frameCost(FRAME_COST_BYTES)).toBe(1);
    expect(frameCost(FRAME_COST_BYTES + 1)).toBe(2);
    expect(frameCost(MAX_FRAME_SIZE)).toBe(46);
  });

  it("the sender's packet budget bounds its bytes: 64 KiB frames get through 46 times less often", async () => {
    // burst 100 tokens: 2 frames of 46 tokens, or 100 small ones; the refill (100/s) adds
    // at most a few tokens while the test sends
    relay = await startRelay({ ratePps: 100, burst: 100 });
    const [a, b] = await pair(relay, 'udp', 'udp');
    let got = 0;
    b.client.on('packet', () => { got++; });
    for (let i = 0; i < 10; i++) rawSend(a, b, DEFAULT_MAX_PAYLOAD);
    const c = relay.server.counters;
    await waitFor(() => got + c.drops.rate_limited === 10, 5000, 'every frame forwarded or dropped');
    expect(got).toBe(2);
    expect(c.drops.rate_limited).toBe(8);
  });

  it("the destination's receive budget counts bytes the same way", async () => {
    relay = await startRelay({ destRatePps: 100 }); // burst 50: one 64 KiB frame (46)
    const [a, b] = await pair(relay, 'udp', 'udp');
    let got = 0;
    b.client.on('packet', () => { got++; });
    for (let i = 0; i < 5; i++) rawSend(a, b, DEFAULT_MAX_PAYLOAD);
    const c = relay.server.counters;
    await waitFor(() => got + c.drops.dest_rate_limited === 5, 5000, 'every frame forwarded or dropped');
    expect(got).toBe(1);
  });
});
