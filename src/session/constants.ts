// Timers and limits of the agent↔agent session layer. The values follow WireGuard's
// protocol constants (whitepaper §6.1), except the first handshake retry, which is shorter
// because an MPC start-up waits on it (see HANDSHAKE_RETRY_* below).

/** Start a new handshake when the current session is this old and we initiated it. */
export const REKEY_AFTER_MS = 120_000;
/** Never send or accept with a session older than this. */
export const REJECT_AFTER_MS = 180_000;
/** A responder whose session is this old (and still in use) initiates the rekey itself. */
export const RESPONDER_REKEY_AFTER_MS = REJECT_AFTER_MS - 10_000 - 5_000; // 165 s
/**
 * Rekey once this many messages were sent with one session. WireGuard uses 2^60 of its
 * 2^64 counter space; our counters are Numbers, exact below 2^53 (src/noise/aead.ts), so
 * the same margins are taken below 2^53. Unreachable in practice: at 10^6 packets/s, 2^52
 * packets take 142 years, and REKEY_AFTER_MS rekeys every 2 minutes.
 */
export const REKEY_AFTER_MESSAGES = 1n << 52n;
/** Refuse to send more than this many messages with one session (2^53 − 2^13 − 1: WireGuard's margin below the limit). */
export const REJECT_AFTER_MESSAGES = (1n << 53n) - (1n << 13n) - 1n;
/** Minimum spacing of initiations to one peer, both sent and accepted (50 per second). */
export const MIN_INITIATION_INTERVAL_MS = 20;
/**
 * An unanswered initiation is retried with a fresh one after 1 s, doubling up to 5 s
 * (WireGuard's REKEY_TIMEOUT). The short first retry matters when the first initiation was
 * lost because the peer had not registered with the relay yet.
 */
export const HANDSHAKE_RETRY_FIRST_MS = 1_000;
export const HANDSHAKE_RETRY_MAX_MS = 5_000;
/** Give up a handshake attempt (and drop queued packets) after this long without an answer. */
export const REKEY_ATTEMPT_MS = 90_000;
/** Plaintexts queued per peer while no session exists; the oldest is dropped beyond this. */
export const MAX_QUEUED_PACKETS = 1024;
/** The Noise prologue binds every handshake to this protocol and version. */
export const PROLOGUE = new TextEncoder().encode('mpyc-agent v1');
