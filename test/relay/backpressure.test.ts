// A WebSocket receiver that stops reading: the relay queues at most wsQueueFrames per
// destination (in 1441-byte packets: a 64 KiB frame counts 46), drops the oldest, counts
// queue_overflow, and keeps serving others.
import { describe, it, expect } from 'vitest';
import { startRelay, startAgent, registered, waitFor } from './helpers.js';
import { DEFAULT_MAX_PAYLOAD } from '../../src/relay/wire.js';

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

  it('large frames fill the queue by their size: 100 packets of 1441 bytes hold two 64 KiB frames', async () => {
    const relay = await startRelay({ wsHighWater: 16 * 1024, wsQueueFrames: 100 });
    const sender = await startAgent(relay, 'udp');
    const stuck = await startAgent(relay, 'ws');
    try {
      await Promise.all([registered(sender), registered(stuck)]);
      const ws = (stuck.client as unknown as { ws: { _socket: { pause(): void } } }).ws;
      ws._socket.pause();
      const payload = new Uint8Array(DEFAULT_MAX_PAYLOAD);
      for (let round = 0; round < 20; round++) {
        for (let i = 0; i < 10; i++) sender.client.send(stuck.keyB64, payload);
        await new Promise((r) => setTimeout(r, 5));
      }
      await waitFor(() => relay.server.counters.drops.queue_overflow > 0, 5000, 'queue_overflow');
      const text = await (await fetch(`http://127.0.0.1:${relay.httpPort}/metrics`)).text();
      const depth = Number(/mpyc_relay_queue_depth (\d+)/.exec(text)![1]);
      expect(depth).toBeGreaterThan(0);
      expect(depth).toBeLessThanOrEqual(2);
    } finally { sender.close(); stuck.close(); await relay.server.stop(false); }
  });
});
