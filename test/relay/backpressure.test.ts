// A WebSocket receiver that stops reading: the relay queues at most wsQueueFrames per
// destination, drops the oldest, counts queue_overflow, and keeps serving others.
import { describe, it, expect } from 'vitest';
import { startRelay, startAgent, registered, waitFor } from './helpers.js';

describe('WebSocket back-pressure', () => {
  it('bounded per-destination queue drops the oldest and counts it', async () => {
    const relay = await startRelay({ wsHighWater: 16 * 1024, wsQueueFrames: 8 });
    const sender = await startAgent(relay, 'udp');
    const stuck = await startAgent(relay, 'ws');
    const other = await startAgent(relay, 'udp');
    try {
      await Promise.all([registered(sender), registered(stuck), registered(other)]);
      // stop reading on the stuck agent's TCP socket (test-only reach into ws internals)
      const ws = (stuck.client as unknown as { ws: { _socket: { pause(): void } } }).ws;
      ws._socket.pause();
      const payload = new Uint8Array(1400);
      for (let round = 0; round < 40; round++) {
        for (let i = 0; i < 100; i++) sender.client.send(stuck.keyB64, payload);
        await new Promise((r) => setTimeout(r, 5));
      }
      await waitFor(() => relay.server.counters.drops.queue_overflow > 0, 5000, 'queue_overflow');
      const text = await (await fetch(`http://127.0.0.1:${relay.httpPort}/metrics`)).text();
      const depth = Number(/mpyc_relay_queue_depth (\d+)/.exec(text)![1]);
      expect(depth).toBeLessThanOrEqual(8);
      // the relay still forwards for everyone else
      let got = 0;
      other.client.on('packet', () => { got++; });
      sender.client.send(other.keyB64, new Uint8Array(10));
      await waitFor(() => got === 1, 2000, 'forwarding to a healthy agent');
    } finally { sender.close(); stuck.close(); other.close(); await relay.server.stop(false); }
  });
});
