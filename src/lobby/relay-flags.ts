// mpyc-relay's lobby flags (src/relay/cli.ts spreads these into its options and help).
import { DEFAULT_LOBBY_LIMITS, HARD_MAX_PARTIES } from './store.js';
import type { LobbyOption } from './http.js';

export const LOBBY_CLI_OPTIONS = {
  lobbies: { type: 'string' }, 'lobbies-per-source': { type: 'string' }, 'lobby-parties': { type: 'string' }, 'lobby-ttl': { type: 'string' },
} as const;

export const LOBBY_CLI_HELP = `  --lobbies N          most open lobbies (mpyc-agent invite/join, on the HTTP port);
                       0 turns lobbies off (default ${DEFAULT_LOBBY_LIMITS.maxLobbies})
  --lobbies-per-source N  most open lobbies created from one address (IPv6: one /64)
                       (default ${DEFAULT_LOBBY_LIMITS.perSource})
  --lobby-parties N    most members of one lobby, 2..${HARD_MAX_PARTIES} (default ${DEFAULT_LOBBY_LIMITS.maxParties})
  --lobby-ttl S        lifetime of a lobby in seconds (default ${DEFAULT_LOBBY_LIMITS.ttlS})
`;

type Flags = Partial<Record<keyof typeof LOBBY_CLI_OPTIONS, string>>;

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
