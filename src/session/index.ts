// The agent↔agent session layer (WireGuard-style framing of Noise IK over UDP).
export { SessionManager, type SessionManagerOptions, type SessionEvent, type ReceiveResult, type PeerSessionInfo, type SourceNaming } from './manager.js';
export { SessionKeys, SESSION_HEADROOM, SESSION_TAILROOM } from './session-keys.js';
export { type InitiationLimits } from './initiation-guard.js';
export { ReplayWindow, REPLAY_WINDOW_SIZE } from './replay-window.js';
export * as sessionWire from './wire.js';
export { TRANSPORT_OVERHEAD_LEN } from './wire.js';
export * as sessionConstants from './constants.js';
