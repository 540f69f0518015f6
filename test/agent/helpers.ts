// Relay + agents in this process on loopback, each agent with its own local base so that
// several parties share one machine (as the demo does).
import pino from 'pino';
import { Agent } from '../../src/agent/agent.js';
import { generateKeyPair, type KeyPair } from '../../src/noise/index.js';
import { PeerKey } from '../../src/common/peer-key.js';
import type { AgentConfig, PartyEntry, RelayAddress } from '../../src/agent/types.js';
import { startRelay, type Relay } from '../relay/helpers.js';
import type { RelayServerOptions } from '../../src/relay/server.js';

export { waitFor } from '../relay/helpers.js';
import { freeBase } from '../tools/ports.js';

export interface Party { index: number; key: KeyPair; agent?: Agent; localBase: number }

export interface Cluster {
  relays: Relay[];
  relayAddresses: RelayAddress[];
  parties: Party[];
  entries: PartyEntry[];
  startAgent(i: number, extra?: Partial<AgentConfig>): Promise<Agent>;
  stopAll(): Promise<void>;
}

export const quietLogger = pino({ level: process.env.AGENT_TEST_LOG ?? 'silent' });

/** A logger whose records land in `lines` (parsed), to assert what an operator would read. */
export function recordingLogger(level = 'info'): { logger: pino.Logger; lines: { level: number; msg: string; [k: string]: unknown }[] } {
  const lines: { level: number; msg: string }[] = [];
  const logger = pino({ level }, { write: (s: string) => { lines.push(JSON.parse(s) as { level: number; msg: string }); } });
  return { logger, lines };
}

/** relays on `relayHost` (default 127.0.0.1; '::1' for an IPv6 relay) */
export async function cluster(m: number, opts: { relays?: number; relayHost?: string; relayOptions?: Partial<RelayServerOptions> } = {}): Promise<Cluster> {
  const relays: Relay[] = [];
  const host = opts.relayHost ?? '127.0.0.1';
  for (let r = 0; r < (opts.relays ?? 1); r++) relays.push(await startRelay({ udp: { host, port: 0 }, http: { host, port: 0 }, ...opts.relayOptions }));
  const relayAddresses: RelayAddress[] = relays.map((r) => ({ publicKey: PeerKey.fromBytes(r.key.publicKey).text, host, udpPort: r.udpPort, httpPort: r.httpPort }));
  const parties: Party[] = [];
  for (let i = 0; i < m; i++) parties.push({ index: i, key: generateKeyPair(), localBase: await freeBase(m) });
  const entries = parties.map((p) => ({ index: p.index, publicKey: PeerKey.fromBytes(p.key.publicKey).text, name: `p${p.index}` }));
  const c: Cluster = {
    relays, relayAddresses, parties, entries,
    async startAgent(i, extra = {}) {
      const p = parties[i]!;
      const agent = new Agent({
        keyPair: p.key, ownIndex: i, parties: entries, relays: relayAddresses, basePort: 11365,
        localBase: p.localBase, relayOnly: false, relayTransport: 'auto', udpBind: { host: '127.0.0.1', port: 0 },
        allowedPorts: [], logger: quietLogger.child({ party: i }), ...extra,
      });
      await agent.start();
      p.agent = agent;
      return agent;
    },
    async stopAll() {
      await Promise.all(parties.map((p) => p.agent?.stop()));
      await Promise.all(relays.map((r) => r.server.stop(false)));
    },
  };
  return c;
}
