// Relay + agents in this process on loopback, each agent with its own local base so that
// several parties share one machine (as the demo does).
import pino from 'pino';
import { Agent } from '../../src/agent/agent.js';
import { generateKeyPair, type KeyPair } from '../../src/noise/index.js';
import { encodeKey } from '../../src/common/base64.js';
import type { AgentConfig, PartyEntry, RelayAddress } from '../../src/agent/types.js';
import { startRelay, type Relay } from '../relay/helpers.js';

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

export async function cluster(m: number, opts: { relays?: number } = {}): Promise<Cluster> {
  const relays: Relay[] = [];
  for (let r = 0; r < (opts.relays ?? 1); r++) relays.push(await startRelay());
  const relayAddresses: RelayAddress[] = relays.map((r) => ({ publicKey: encodeKey(r.key.publicKey), host: '127.0.0.1', udpPort: r.udpPort, httpPort: r.httpPort }));
  const parties: Party[] = [];
  for (let i = 0; i < m; i++) parties.push({ index: i, key: generateKeyPair(), localBase: await freeBase(m) });
  const entries = parties.map((p) => ({ index: p.index, publicKey: encodeKey(p.key.publicKey), name: `p${p.index}` }));
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
