// The defaults `mpyc-relay serve --help` and `--check` show (serve-options.ts, kept free of
// heavy imports) are the ones the relay runs with: RelayServer's own defaults and the lobby's.
import { describe, expect, it } from 'vitest';
import { RelayServer, DEFAULT_LIMITS } from '../../src/relay/server.js';
import { DEFAULT_LOBBY_LIMITS, HARD_MAX_PARTIES } from '../../src/lobby/store.js';
import { generateKeyPair } from '../../src/noise/index.js';
import { LOBBY_MAX_PARTIES, SERVE_DEFAULTS, SERVE_OPTIONS } from '../../src/relay/serve-options.js';
import { settingsFrom } from '../../src/relay/serve-settings.js';
import { loadConfig } from '../../src/common/config.js';

describe('mpyc-relay serve defaults', () => {
  it('are those of RelayServer and the lobby store', () => {
    const kp = generateKeyPair();
    // what a RelayServer given no limits runs with (its private options, read here only)
    const o = (new RelayServer({ keyPair: kp, udp: { host: '127.0.0.1', port: 0 } }) as unknown as { o: Record<string, unknown> }).o;
    kp.privateKey.fill(0);
    const s = settingsFrom(loadConfig(SERVE_OPTIONS, { flags: { key: 'k' }, env: {}, envPrefix: 'MPYC_RELAY' }));
    expect({ ...s.limits }).toEqual({ ...DEFAULT_LIMITS, burst: o.burst });
    for (const [k, v] of Object.entries(s.limits)) expect(o[k], k).toBe(v);
    expect([s.maxPayload, s.maxAgents, s.keepaliveS, s.expiryS]).toEqual([o.maxPayload, o.maxAgents, o.keepaliveS, o.expiryS]);
    expect(s.lobby).toEqual({});
    expect({ maxLobbies: SERVE_DEFAULTS.lobbies, perSource: SERVE_DEFAULTS['lobbies-per-source'], maxParties: SERVE_DEFAULTS['lobby-parties'], ttlS: SERVE_DEFAULTS['lobby-ttl'] })
      .toEqual(DEFAULT_LOBBY_LIMITS);
    expect(LOBBY_MAX_PARTIES).toBe(HARD_MAX_PARTIES);
  });
});
