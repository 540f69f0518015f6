// Reliable streams over encrypted datagrams: the public API of src/transport.
// Sans-I/O core: `Connection` (receive / poll / nextDeadline / streams); Node adapter:
// `ConnectionDriver` (real timers + sendDatagram) and `bindStreamToSocket` (net.Socket).
export { Connection, MAX_ACK_DELAY_MS } from './connection.js';
export type { ConnectionOptions, ConnectionStats, TransportEvent } from './types.js';
export { RESET_CODE, CLOSE_CODE } from './types.js';
export { INITIAL_STREAM_CREDIT, INITIAL_CONNECTION_CREDIT } from './stream.js';
export { parsePacket, encodePacket, type Frame, type PacketHeader } from './wire.js';
export { ConnectionDriver, bindStreamToSocket, type StreamHandlers } from './node.js';
