// The relay's default limits, in a module of their own so that `mpyc-relay --help` (which
// prints them) does not load the server. Why each default: docs/relay.md "Limits".
import type { RelayLimits } from './server.js';

export const DEFAULT_LIMITS: Omit<RelayLimits, 'burst'> = {
  ratePps: 100_000, sourceRatePps: 200_000, destRatePps: 100_000, globalRatePps: 1_000_000,
  handshakeRatePerSource: 50, handshakeRateGlobal: 1000, stunRatePerSource: 20, maxSources: 100_000,
  maxConnections: 10_000, maxConnectionsPerSource: 64, headersTimeoutMs: 5000, idleTimeoutMs: 15_000,
  wsRegisterTimeoutMs: 5000,
};
