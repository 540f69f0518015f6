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
import { controlKeysInUse } from '../../src/relay/control-auth.js';

/**
 * One registration over a raw transport; resolves when REGISTERED verifies. Like the real
 * client it starts over with a fresh HELLO when an answer does not come within a second
 * (a datagram lost on a loaded machine, or a handshake over the relay's budget), a bounded
 * number of times.
 */
type Next = (ms: number, want: (f: Buffer) => boolean) => Promise<Buffer | undefined>;
async function registerOnce(send: (f: Uint8Array) => void, next: Next, relayKey: Uint8Array): Promise<void> {
  const kp = generateKeyPair();
  for (let attempt = 0; attempt < 10; attempt++) {
    const nonce = crypto.getRandomValues(new Uint8Array(8));
    send(encodeHello(nonce));
    // a late answer to an earlier attempt may come first: wait for the one to this HELLO
    const c = await next(1000, (f) => f[0] === FRAME_CHALLENGE && Buffer.from(f.subarray(28, 36)).equals(Buffer.from(nonce)));
    if (!c) continue;
    const cookie = c.subarray(4, 28);
    const hs = new HandshakeState({ protocolName: NOISE_PROTOCOL, initiator: true, prologue: registrationPrologue(cookie), staticKey: kp, remoteStaticKey: relayKey });
    send(encodeRegister(cookie, hs.writeMessage(new Uint8Array(0))));
    const r = await next(1000, (f) => f[0] === FRAME_REGISTERED);
    if (!r) { hs.destroy(); continue; }
    hs.readMessage(r.subarray(4)); // throws unless it answers this handshake
    hs.destroy();
    return;
  }
  throw new Error('no registration after 10 HELLOs');
}

/** next(ms, want): the first frame `want` accepts (others are stale and dropped), or
 *  undefined after `ms`. One waiter at a time (one registration per socket). */
function queue(): { push: (b: Buffer) => void; next: Next } {
  let waiter: ((b: Buffer) => boolean) | undefined;
  return {
    push: (b) => { if (waiter?.(b)) waiter = undefined; },
    next: (ms, want) => new Promise<Buffer | undefined>((resolve) => {
      const t = setTimeout(() => { waiter = undefined; resolve(undefined); }, ms);
      waiter = (b) => { if (!want(b)) return false; clearTimeout(t); resolve(b); return true; };
    }),
  };
}

describe('registration churn', () => {
  let relay: Relay;
  afterAll(async () => { await relay?.server.stop(false); });

  it('10k UDP registrations + 1000 WebSocket sessions leave state bounded and memory flat', async () => {
    relay = await startRelay();
    const SOCKETS = 50, TOTAL = 10_000;
    // one source address per socket: each stays within the relay's default per-source
    // handshake budget (50/s) at this test's pace
    const socks = await Promise.all(Array.from({ length: SOCKETS }, async (_, i) => {
      const s = dgram.createSocket('udp4');
      await new Promise<void>((r) => s.bind(0, `127.0.4.${1 + i}`, () => r()));
      const q = queue();
      s.on('message', (m) => q.push(m));
      return { s, q };
    }));
    // exactly TOTAL registrations, counted when they complete: the loop is bounded by the
    // count (each registration succeeds or throws within 10 HELLOs) and by the test timeout,
    // never by a wall-clock deadline that a loaded machine can hit first
    let started = 0, completed = 0;
    const t0 = performance.now();
    let heapAt2k = 0;
    try {
      await Promise.all(socks.map(async ({ s, q }) => {
        while (started < TOTAL) {
          started++;
          await registerOnce((f) => s.send(f, relay.udpPort, '127.0.0.1'), q.next, relay.key.publicKey);
          if (++completed === 2000) heapAt2k = heapAfterGc();
        }
      }));
    } finally { for (const { s } of socks) s.close(); }
    process.stdout.write(`churn: ${TOTAL} UDP registrations in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
    expect(completed).toBe(TOTAL);
    expect(relay.server.counters.registrations).toBeGreaterThanOrEqual(TOTAL);
    // one binding per address: the newest registration replaced the older ones
    expect(relay.server.agentCount).toBeLessThanOrEqual(SOCKETS);

    // WebSocket churn: connect, register, close
    for (let i = 0; i < 1000; i += 50) {
      await Promise.all(Array.from({ length: 50 }, async (_, j) => {
        const ws = new WebSocket(`ws://127.0.0.1:${relay.httpPort}/relay`, { localAddress: `127.0.5.${1 + j}` });
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
    // every replaced or closed registration gave its control keys back (zeroed)
    expect(controlKeysInUse()).toBe(relay.server.agentCount);
    const heapEnd = heapAfterGc();
    // flat: 9000 more registrations must not have grown the retained heap by more than
    // the bounded spent-cookie record (< 2 MB); a leak of ~1 KB per registration would
    // show as 9+ MB
    expect(heapEnd - heapAt2k).toBeLessThan(4 * 1024 * 1024);
  }, 240_000);
});
