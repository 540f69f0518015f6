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
export const REKEY_AFTER_MESSAGES = 2 ** 52;
/** Refuse to send more than this many messages with one session (2^53 − 2^13 − 1: WireGuard's margin below the limit). */
export const REJECT_AFTER_MESSAGES = 2 ** 53 - 2 ** 13 - 1;
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

// ---- Initiations before any Diffie-Hellman (initiation-guard.ts, docs/protocol/session.md)
/**
 * Above this rate of initiations (mac1 valid, not an exact copy), the responder is under
 * load for UNDER_LOAD_HOLD_MS and demands a valid mac2 (a cookie for the source). A
 * session's peers each initiate about once per 2 minutes, and at most once per second while
 * retrying, so even 50 parties starting together stay below it.
 */
export const UNDER_LOAD_INITIATIONS_PER_S = 50;
/** How long "under load" lasts after the rate was last exceeded (WireGuard's UnderLoadAfterTime). */
export const UNDER_LOAD_HOLD_MS = 1_000;
/**
 * Initiations with a valid mac2 (their source proved by a cookie) accepted per source
 * under load: WireGuard's rate limiter (20 per second, burst 5). One peer needs at most
 * one per second while retrying, plus one repeat on a simultaneous initiation.
 */
export const SOURCE_INITIATIONS_PER_S = 20;
export const SOURCE_INITIATION_BURST = 5;
/** Sources with a bucket at once; beyond it the least recently used is forgotten (reset to full). */
export const MAX_TRACKED_SOURCES = 4096;
/**
 * Initiations that reach the Diffie-Hellman stage, all sources together (at most 3 DH each,
 * ~40 µs per DH here): 500 per second bounds handshake work to ~6 % of a core.
 */
export const GLOBAL_INITIATIONS_PER_S = 500;
export const GLOBAL_INITIATION_BURST = 100;
/** Ephemeral keys of authenticated initiations remembered, so exact copies cost no DH. */
export const RECENT_INITIATIONS = 4096;
