// The relay's POST /lobby over real HTTP: whatever arrives (random bodies, oversized
// bodies, other methods) gets a well-formed lobby answer or a clear HTTP error, and the
// relay keeps serving.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { request } from 'node:http';
import { startRelay, type Relay } from '../relay/helpers.js';
import { decodeResponse, maxRequestLen, STATUS } from '../../src/lobby/wire.js';
import { DEFAULT_LOBBY_LIMITS } from '../../src/lobby/store.js';

let relay: Relay;
beforeAll(async () => { relay = await startRelay(); });
afterAll(async () => { await relay.server.stop(false); });

function post(body: Uint8Array, method = 'POST'): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: relay.httpPort, path: '/lobby', method, headers: { 'content-type': 'application/octet-stream' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('POST /lobby', () => {
  it('answers random bodies with well-formed lobby responses, never a server error', async () => {
    const bodies = fc.sample(fc.oneof(
      fc.uint8Array({ maxLength: 400 }),
      fc.tuple(fc.integer({ min: 0, max: 6 }), fc.uint8Array({ minLength: 16, maxLength: 320 })).map(([op, rest]) => Uint8Array.from([1, op, ...rest])),
    ), { seed: 99, numRuns: 150 });
    for (const b of bodies) {
      const r = await post(b);
      expect(r.status).toBeLessThan(500);
      const d = decodeResponse(r.body);
      expect(d, `HTTP ${r.status}`).not.toBeNull();
    }
    const metrics = await (await fetch(`http://127.0.0.1:${relay.httpPort}/metrics`)).text();
    expect(metrics).toMatch(/mpyc_relay_lobby_requests_total\{op="invalid",status="bad_request"\} [1-9]/);
    expect(metrics).toMatch(/^mpyc_relay_lobbies \d+$/m); // random CREATEs may have opened some
  });

  it('refuses a body larger than the largest valid request (413) and other methods (405)', async () => {
    const big = await post(new Uint8Array(maxRequestLen(DEFAULT_LOBBY_LIMITS.maxParties) + 1).fill(1));
    expect(big.status).toBe(413);
    expect(decodeResponse(big.body)).toEqual({ status: STATUS.TOO_LARGE });
    expect((await post(new Uint8Array(0), 'GET')).status).toBe(405);
    const health = await fetch(`http://127.0.0.1:${relay.httpPort}/healthz`);
    expect(health.status).toBe(200);
  });
});
