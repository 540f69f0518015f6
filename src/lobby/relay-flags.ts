// mpyc-relay's lobby flags as the relay's lobby option (the flags themselves and their help
// are in src/relay/serve-options.ts, with every other serve option).
import { HARD_MAX_PARTIES } from './store.js';
import type { LobbyOption } from './http.js';

type Flags = Partial<Record<'lobbies' | 'lobbies-per-source' | 'lobby-parties' | 'lobby-ttl', string>>;

function count(text: string | undefined, flag: string, min: number, max: number): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) throw new Error(`--${flag}: expected an integer ${min}..${max}, got ${JSON.stringify(text)}`);
  return Number(text);
}

/** The relay's lobby option from its flags; throws an Error naming the flag. */
export function lobbyOptionFromFlags(v: Flags): LobbyOption {
  const maxLobbies = count(v.lobbies, 'lobbies', 0, 1_000_000);
  if (maxLobbies === 0) return false;
  const o: Exclude<LobbyOption, false> = {};
  if (maxLobbies !== undefined) o.maxLobbies = maxLobbies;
  const perSource = count(v['lobbies-per-source'], 'lobbies-per-source', 1, 1_000_000);
  if (perSource !== undefined) o.perSource = perSource;
  const maxParties = count(v['lobby-parties'], 'lobby-parties', 2, HARD_MAX_PARTIES);
  if (maxParties !== undefined) o.maxParties = maxParties;
  const ttlS = count(v['lobby-ttl'], 'lobby-ttl', 1, 7 * 86_400);
  if (ttlS !== undefined) o.ttlS = ttlS;
  return o;
}
