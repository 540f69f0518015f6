// Public surface of the relay module for the agent and tests.
export { RelayClient, relayWsUrl } from './client.js';
export type { RelayClientOptions, RelayClientEvents, RelayClientState, RelayTransport, RelayTransportMode } from './client.js';
export { RelayServer } from './server.js';
export type { RelayServerOptions, HostPort } from './server.js';
export { isRelayFrame, DEFAULT_MAX_PAYLOAD } from './wire.js';
