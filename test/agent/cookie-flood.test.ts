// The agent wires the session layer's cookie mechanism (SessionManager `source`): under an
// initiation flood, forged initiations from one address get cookie replies there (no DH),
// and a legitimate peer, whose own initiation also gets a cookie, repeats it with mac2 and
// connects. Real sockets on loopback, the agents in this process.
import * as dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { cluster, waitFor, type Cluster } from './helpers.js';
import { computeMac, mac1Key } from '../../src/session/mac.js';
import { INITIATION_LEN, MAC_LEN, MSG_COOKIE_REPLY, NOISE_MSG1_LEN, encodeInitiation } from '../../src/session/wire.js';
import { UNDER_LOAD_INITIATIONS_PER_S } from '../../src/session/constants.js';

let c: Cluster | undefined;
let flood: dgram.Socket | undefined;
let timer: NodeJS.Timeout | undefined;
afterEach(async () => {
  if (timer) clearInterval(timer);
  flood?.close();
  flood = undefined;
  await c?.stopAll();
  c = undefined;
});

/** An initiation with a valid mac1 for `responder` (anyone who knows its public key can make one) and random Noise bytes. */
function forgedInitiation(responder: Uint8Array): Uint8Array {
  const zero = new Uint8Array(MAC_LEN);
  const p = encodeInitiation({ senderIndex: randomBytes(4).readUInt32LE(0), noise: randomBytes(NOISE_MSG1_LEN), mac1: zero, mac2: zero });
  p.set(computeMac(mac1Key(responder), p.subarray(0, INITIATION_LEN - 2 * MAC_LEN)), INITIATION_LEN - 2 * MAC_LEN);
  return p;
}

describe('agent under an initiation flood', () => {
  it('answers forged initiations with cookie replies to their source, and a legitimate peer still connects', async () => {
    c = await cluster(2);
    const b = await c.startAgent(1);
    const bPort = b.status().udpPort;
    const bKey = c.parties[1]!.key.publicKey;
    flood = dgram.createSocket('udp4');
    await new Promise<void>((r) => flood!.bind(0, '127.0.0.1', () => r()));
    let cookies = 0;
    flood.on('message', (m) => { if (m[0] === MSG_COOKIE_REPLY) cookies++; });
    // 4× the rate that puts a responder under load, for as long as the test runs (bounded below)
    const perTick = Math.ceil((4 * UNDER_LOAD_INITIATIONS_PER_S) / 100);
    let sent = 0;
    timer = setInterval(() => {
      for (let i = 0; i < perTick && sent < 5_000; i++, sent++) flood!.send(forgedInitiation(bKey), bPort, '127.0.0.1');
    }, 10);
    await waitFor(() => cookies >= 10, 5_000, 'cookie replies to the flood');

    // party 0 starts in the middle of the flood: its initiation gets a cookie too, and is repeated with mac2
    const a = await c.startAgent(0);
    await waitFor(() => a.status().peers[0]!.liveness === 'connected' && b.status().peers[0]!.liveness === 'connected', 10_000, 'the legitimate handshake');
    expect(cookies).toBeGreaterThanOrEqual(10);
    expect(await b.metrics()).toMatch(/reason="session_cookie_sent"\} [1-9]/);
    // the peer's own initiation was answered with a cookie too, which it took and used
    expect(await a.metrics()).toMatch(/reason="session_cookie_accepted"\} [1-9]/);
  }, 30_000);
});
