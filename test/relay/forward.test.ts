import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { startRelay, startAgent, registered, waitFor, type Relay, type Agent } from './helpers.js';

describe('relay forwarding between agents', () => {
  let relay: Relay;
  const agents: Agent[] = [];
  beforeAll(async () => { relay = await startRelay(); });
  afterAll(async () => { for (const a of agents) a.close(); await relay.server.stop(false); });

  for (const [ta, tb] of [['udp', 'udp'], ['ws', 'ws'], ['udp', 'ws'], ['ws', 'udp']] as const) {
    it(`${ta} <-> ${tb}: packets arrive intact in both directions with the sender's key`, async () => {
      const a = await startAgent(relay, ta);
      const b = await startAgent(relay, tb);
      agents.push(a, b);
      await Promise.all([registered(a), registered(b)]);
      expect(a.client.transport).toBe(ta);
      expect(relay.server.lookup(b.keyB64)?.transport).toBe(tb);
      const atB: Array<[string, Buffer]> = [];
      const atA: Array<[string, Buffer]> = [];
      b.client.on('packet', (k, p) => atB.push([k, Buffer.from(p)]));
      a.client.on('packet', (k, p) => atA.push([k, Buffer.from(p)]));
      const N = 50;
      for (let i = 0; i < N; i++) {
        const p = Buffer.alloc(1 + i * 20, i);
        expect(a.client.send(b.keyB64, p)).toBe(true);
        expect(b.client.send(a.key.publicKey, p)).toBe(true);
      }
      await waitFor(() => atA.length === N && atB.length === N, 5000, 'all packets');
      for (let i = 0; i < N; i++) {
        expect(atB[i]![0]).toBe(a.keyB64);
        expect(atB[i]![1].equals(Buffer.alloc(1 + i * 20, i))).toBe(true);
        expect(atA[i]![0]).toBe(b.keyB64);
      }
    });
  }

  it('packets from many senders, interleaved, each name their own sender (text and PeerKey)', async () => {
    const b = await startAgent(relay, 'udp');
    // more senders than the client's recent-sender list (8): names come from the id cache too
    const senders = await Promise.all(Array.from({ length: 10 }, () => startAgent(relay, 'udp')));
    agents.push(b, ...senders);
    await Promise.all([b, ...senders].map((x) => registered(x)));
    const got: Array<[string, string, number]> = [];
    b.client.on('packet', (k, p, from) => got.push([k, from.text, p[0]!]));
    for (let round = 0; round < 3; round++) senders.forEach((x, i) => x.client.send(b.keyB64, new Uint8Array([i])));
    await waitFor(() => got.length === 30, 5000, 'all packets');
    for (const [k, fromText, i] of got) {
      expect(k).toBe(senders[i]!.keyB64);
      expect(fromText).toBe(k);
    }
  });

  it('a SEND to an unregistered key yields peerGone and a no_peer drop', async () => {
    const a = await startAgent(relay, 'udp');
    agents.push(a);
    await registered(a);
    const gone: string[] = [];
    a.client.on('peerGone', (k) => gone.push(k));
    const before = relay.server.counters.drops.no_peer;
    const stranger = Buffer.alloc(32, 7).toString('base64');
    a.client.send(stranger, new Uint8Array(10));
    await waitFor(() => gone.length === 1, 3000, 'peerGone');
    expect(gone[0]).toBe(stranger);
    expect(relay.server.counters.drops.no_peer).toBe(before + 1);
  });

  it('auto mode falls back to WebSocket when UDP gets no answer', async () => {
    const a = await startAgent(relay, 'auto', { udpFallbackMs: 300, sendUdp: () => { /* UDP blackholed */ } });
    agents.push(a);
    await registered(a);
    expect(a.client.transport).toBe('ws');
    expect(relay.server.lookup(a.keyB64)?.transport).toBe('ws');
  });

  it('auto mode stays on UDP when the relay answers', async () => {
    const a = await startAgent(relay, 'auto', { udpFallbackMs: 300 });
    agents.push(a);
    await registered(a);
    expect(a.client.transport).toBe('udp');
  });
});
