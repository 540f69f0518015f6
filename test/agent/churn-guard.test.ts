// Connection churn (docs/SECURITY.md): a peer whose packets keep closing the transport
// connection (protocol errors) must not make the agent create connections at the rate it
// sends packets. ChurnGuard's schedule, and PeerStreams under a burst of such packets.
import { describe, it, expect, afterEach } from 'vitest';
import pino from 'pino';
import { ChurnGuard, CHURN_CALM_MS, CHURN_FIRST_HOLD_MS, CHURN_MAX_HOLD_MS } from '../../src/agent/churn-guard.js';
import { PeerStreams } from '../../src/agent/streams.js';
import { LocalConnector } from '../../src/agent/local-connector.js';
import { encodePacket, type Frame } from '../../src/transport/wire.js';

describe('ChurnGuard', () => {
  it('the first close costs nothing; closes in a row hold the next connection 50, 100, 200 ms ... up to 10 s', () => {
    const g = new ChurnGuard(0);
    let now = 20_000;
    const holds: number[] = [];
    for (let i = 0; i < 12; i++) {
      const from = g.closed(now);
      holds.push(from - now);
      if (from > now) expect(g.listening(from - 1)).toBe(false);
      expect(g.listening(from)).toBe(true);
      now = from + 1; // the attacker closes the next connection as soon as it listens
    }
    expect(holds.slice(0, 5)).toEqual([0, CHURN_FIRST_HOLD_MS, 2 * CHURN_FIRST_HOLD_MS, 4 * CHURN_FIRST_HOLD_MS, 8 * CHURN_FIRST_HOLD_MS]);
    expect(Math.max(...holds)).toBe(CHURN_MAX_HOLD_MS);
    expect(holds.at(-1)).toBe(CHURN_MAX_HOLD_MS);
  });

  it('a connection listened to for CHURN_CALM_MS ends the series: its close is free again', () => {
    const g = new ChurnGuard(0);
    g.closed(20_000);
    const from = g.closed(20_001);
    expect(from - 20_001).toBe(CHURN_FIRST_HOLD_MS);
    const later = from + CHURN_CALM_MS;
    expect(g.closed(later)).toBe(later);
  });
});

describe('PeerStreams under packets that each close its connection', () => {
  let cleanup: (() => void)[] = [];
  afterEach(() => { for (const c of cleanup) c(); cleanup = []; });

  it('creates a handful of connections for 40 such packets, and takes a valid packet again once the hold ends', async () => {
    const lines: { msg: string; holdMs?: number }[] = [];
    const logger = pino({ level: 'warn' }, { write: (s: string) => { lines.push(JSON.parse(s) as { msg: string }); } });
    const connector = new LocalConnector(logger);
    const streams = new PeerStreams({
      side: 1, sendDatagram: () => {}, resolveTarget: () => 'refused', connector, logger, idleTimeoutMs: 30_000,
    });
    cleanup.push(() => { streams.stop(); connector.stop(); });
    const attackerEpoch = 0xa77ac3;
    let pn = 0;
    const send = (frames: Frame[]) => streams.receive(encodePacket({ srcEpoch: attackerEpoch, dstEpoch: 0, pn: pn++ }, frames));
    // a stream id far beyond the stream credit: a protocol error, the connection closes
    const violation: Frame = { type: 'stream', id: 2 ** 40, offset: 0, fin: false, target: new Uint8Array([1, 0, 1]), data: new Uint8Array(1) };
    const closes = () => lines.filter((l) => l.msg.startsWith('stream connection closed')).length;
    for (let i = 0; i < 40; i++) {
      send([violation]);
      await new Promise((r) => setTimeout(r, 5));
    }
    // unbounded: one connection per packet (40); held: 0, +50, +100, +200 ms ... (a few in ~0.2-1 s)
    expect(closes()).toBeGreaterThanOrEqual(2);
    expect(closes()).toBeLessThanOrEqual(8);
    // after the hold a valid packet reaches the connection
    const deadline = Date.now() + 5_000;
    while (streams.connection.stats().packetsReceived === 0 && Date.now() < deadline) {
      send([{ type: 'ping' }]);
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(streams.connection.stats().packetsReceived).toBeGreaterThan(0);
    expect(streams.connection.closed).toBe(false);
  });
});
