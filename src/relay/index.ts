// Public surface of the relay module for the agent and tests.
export { RelayClient, relayWsUrl } from './client.js';
export type { RelayClientOptions, RelayClientEvents, RelayClientState, RelayTransport, RelayTransportMode } from './client.js';
export { RelayServer } from './server.js';
export type { RelayServerOptions, RelayLimits, HostPort } from './server.js';
export { isRelayFrame, RELAY_FRAME_FIRST, RELAY_FRAME_LAST, DEFAULT_MAX_PAYLOAD, MAX_ACCEPT_KEYS } from './wire.js';
