// Registration churn: 10k registrations (each replacing the previous one at its address,
// i.e. connect/disconnect) plus WebSocket connect/register/close cycles leave the relay's
// state bounded and its memory flat.
import { describe, it, expect, afterAll } from 'vitest';
import * as dgram from 'node:dgram';
import WebSocket from 'ws';

// a real GC before each heap reading, so the comparison measures retained memory only
// vitest.config.ts starts the test workers with --expose-gc
const gc = (globalThis as { gc?: () => void }).gc ?? ((): void => { throw new Error('run with --expose-gc (vitest.config.ts sets it)'); });
function heapAfterGc(): number { gc(); gc(); return process.memoryUsage().heapUsed; }
import { startRelay, type Relay } from './helpers.js';
import { HandshakeState, generateKeyPair } from '../../src/noise/index.js';
import {
  FRAME_CHALLENGE, FRAME_REGISTERED, NOISE_PROTOCOL, encodeHello, encodeRegister, registrationPrologue,
} from '../../src/relay/wire.js';

/** One registration over a raw transport; resolves when REGISTERED verifies. */
function registerOnce(send: (f: Uint8Array) => void, next: () => Promise<Buffer>, relayKey: Uint8Array): Promise<void> {
  return (async () => {
    const kp = generateKeyPair();
    send(encodeHello());
    let f = await next();
    if (f[0] !== FRAME_CHALLENGE) throw new Error(`expected CHALLENGE, got ${f[0]}`);
    const cookie = f.subarray(4, 28);
    const hs = new HandshakeState({ protocolName: NOISE_PROTOCOL, initiator: true, prologue: registrationPrologue(cookie), staticKey: kp, remoteStaticKey: relayKey });
    send(encodeRegister(cookie, hs.writeMessage(new Uint8Array(0))));
    f = await next();
    if (f[0] !== FRAME_REGISTERED) throw new Error(`expected REGISTERED, got ${f[0]}`);
    hs.readMessage(f.subarray(4));
  })();
}

function queue(): { push: (b: Buffer) => void; next: () => Promise<Buffer> } {
  const items: Buffer[] = [];
  const waiters: Array<(b: Buffer) => void> = [];
  return {
    push: (b) => { const w = waiters.shift(); if (w) w(b); else items.push(b); },
    next: () => new Promise<Buffer>((resolve, reject) => {
      const b = items.shift();
      if (b) { resolve(b); return; }
      const t = setTimeout(() => reject(new Error('no answer from relay')), 3000);
      waiters.push((x) => { clearTimeout(t); resolve(x); });
    }),
  };
}

describe('registration churn', () => {
  let relay: Relay;
  afterAll(async () => { await relay?.server.stop(false); });

  it('10k UDP registrations + 1000 WebSocket sessions leave state bounded and memory flat', async () => {
    relay = await startRelay();
    const SOCKETS = 50, TOTAL = 10_000;
    const socks = await Promise.all(Array.from({ length: SOCKETS }, async () => {
      const s = dgram.createSocket('udp4');
      await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
      const q = queue();
      s.on('message', (m) => q.push(m));
      return { s, q };
    }));
    let done = 0;
    let heapAt2k = 0;
    const t0 = Date.now();
    try {
      await Promise.all(socks.map(async ({ s, q }) => {
        while (done < TOTAL && Date.now() - t0 < 90_000) {
          done++;
          await registerOnce((f) => s.send(f, relay.udpPort, '127.0.0.1'), q.next, relay.key.publicKey);
          if (done === 2000) heapAt2k = heapAfterGc();
        }
      }));
    } finally { for (const { s } of socks) s.close(); }
    expect(done).toBeGreaterThanOrEqual(TOTAL);
    expect(relay.server.counters.registrations).toBeGreaterThanOrEqual(TOTAL);
    // one binding per address: the newest registration replaced the older ones
    expect(relay.server.agentCount).toBeLessThanOrEqual(SOCKETS);

    // WebSocket churn: connect, register, close
    for (let i = 0; i < 1000; i += 50) {
      await Promise.all(Array.from({ length: 50 }, async () => {
        const ws = new WebSocket(`ws://127.0.0.1:${relay.httpPort}/relay`);
        const q = queue();
        ws.on('message', (m: Buffer) => q.push(m));
        await new Promise((r) => ws.once('open', r));
        await registerOnce((f) => ws.send(f), q.next, relay.key.publicKey);
        const closed = new Promise((r) => ws.once('close', r));
        ws.close();
        await closed;
      }));
    }
    await new Promise((r) => setTimeout(r, 100));
    expect(relay.server.agentCount).toBeLessThanOrEqual(SOCKETS);
    const heapEnd = heapAfterGc();
    // flat: 9000 more registrations must not have grown the retained heap by more than
    // the bounded spent-cookie record (< 2 MB); a leak of ~1 KB per registration would
    // show as 9+ MB
    expect(heapEnd - heapAt2k).toBeLessThan(4 * 1024 * 1024);
  }, 150_000);
});
