// Public types of the transport core (stable API; the agent codes against these).
import type { ParseError } from './wire.js';

export interface ConnectionOptions {
  /** 0 or 1: the low bit of the stream ids this side opens (e.g. 0 = smaller static key) */
  side: 0 | 1;
  /**
   * the base packet size: what every path carries (default 1200); larger packets only after
   * DPLPMTUD confirmed them (pathMaxPacketSize)
   */
  maxPacketSize?: number;
  /**
   * the largest transport packet the path could carry (default: maxPacketSize, no probing);
   * the connection probes up to it (RFC 8899). Also setPathMaxPacketSize().
   */
  pathMaxPacketSize?: number;
  /** our random non-zero 32-bit connection epoch (default: random from `random`) */
  epoch?: number;
  /** close the connection when nothing was received for this long (default 30000 ms) */
  idleTimeoutMs?: number;
  /** send a PING when nothing ack-eliciting was sent for this long (default min(10000, idle/3)) */
  keepAliveMs?: number;
  /** bytes a stream buffers unacknowledged before write() accepts less (default 1 MiB) */
  sendBufferBytes?: number;
  /** largest per-stream receive window after auto-tuning (default 16 MiB) */
  maxStreamWindow?: number;
  /** largest connection receive window after auto-tuning (default 64 MiB) */
  maxConnectionWindow?: number;
  /**
   * max concurrent streams the peer may open (default 4096, at least 64): granted by
   * MAX_STREAMS as its streams close; a peer opening beyond it is a protocol error
   */
  maxPeerStreams?: number;
  /** random source in [0,1) (default Math.random); the simulator passes a seeded PRNG */
  random?: () => number;
  /**
   * bytes free before every packet poll() returns (default 0): the packet is a view at
   * `headroom` inside a larger ArrayBuffer, so lower layers (inner type byte, Noise header,
   * relay SEND header) can write their headers in place in front of it
   */
  headroom?: number;
  /** bytes free after every packet (default 0), e.g. for the AEAD tag */
  tailroom?: number;
  /**
   * acknowledge at once after this many ack-eliciting packets (default 8); fewer packets wait
   * up to MAX_ACK_DELAY_MS, or ride on the reply. A gap is always acknowledged at once.
   */
  ackEveryPackets?: number;
}

/**
 * Buffer ownership. A packet poll() returns is the caller's: `pkt.buffer` holds `headroom`
 * free bytes before `pkt.byteOffset` and `tailroom` after `pkt.byteOffset + pkt.length`, and
 * the caller may write there and in the packet itself. A packet passed to receive() becomes
 * the connection's: stream data is handed to read() as views of it (pieces smaller than a
 * quarter of the datagram are copied, so they do not pin it), so the caller must not reuse
 * or modify that buffer afterwards. Bytes passed to write() are kept by reference until
 * acknowledged: do not modify them either.
 */

export type TransportEvent =
  /** the peer opened a stream; `target` is the opaque bytes it gave to openStream */
  | { type: 'open'; id: number; target: Uint8Array }
  /** stream has data to read() */
  | { type: 'readable'; id: number }
  /** the peer finished its side (all bytes before it were delivered by read()) */
  | { type: 'fin'; id: number }
  /** the peer reset the stream (or the connection reset it: peer restart/close) */
  | { type: 'reset'; id: number; code: number }
  /** write() may accept more bytes again */
  | { type: 'writable'; id: number }
  /** both directions of the stream are done; its id is forgotten */
  | { type: 'closed'; id: number }
  /** the peer's agent restarted (new epoch): every old stream was reset */
  | { type: 'peerRestarted'; oldEpoch: number; newEpoch: number }
  /** the connection is dead (idle timeout, CLOSE received, close() called); make a new one */
  | { type: 'connectionClosed'; reason: string; code: number };

export interface ConnectionStats {
  smoothedRttMs: number;
  minRttMs: number;
  rttVarMs: number;
  cwnd: number;
  bytesInFlight: number;
  packetsSent: number;
  packetsReceived: number;
  packetsLost: number;
  packetsRetransmitted: number;
  /** packets declared lost that were acknowledged later (reordering, not loss) */
  spuriousLosses: number;
  bytesSent: number;
  bytesReceived: number;
  /** application stream bytes delivered to read() */
  streamBytesReceived: number;
  /** malformed packets dropped (the sum of the parse errors in `dropped`) */
  malformed: number;
  /** packets dropped, by reason (typed: see DropReason) */
  dropped: Record<DropReason, number>;
  /**
   * exceptions caught in receive() (a bug, never a peer's doing: parsers do not throw);
   * tests assert 0
   */
  internalErrors: number;
  /** out-of-order stream bytes buffered now, as charged (length + 64 per fragment) */
  reassemblyBytes: number;
  /** the packet size in use (DPLPMTUD; maxPacketSize until a probe confirmed more) */
  packetSize: number;
  /** DPLPMTUD probes sent */
  mtuProbes: number;
  /** times full-size packets kept getting lost and the size fell back to the base */
  mtuBlackHoles: number;
  /** non-probe packets sent beyond the congestion window (must stay 0: tests check it) */
  cwndViolations: number;
  ptoCount: number;
  openStreams: number;
}

/**
 * Why receive() dropped a packet: a parse error (malformed), addressed to an earlier
 * incarnation of us or from one of the peer's, a duplicate, over the reassembly budget
 * (dropped unacknowledged: the peer re-sends), after close, or an internal error.
 */
export type DropReason = ParseError | 'stale_epoch' | 'retired_epoch' | 'duplicate' | 'over_budget' | 'closed' | 'internal_error';
/** receive()'s verdict on one datagram */
export type ReceiveResult = 'ok' | DropReason;
export const DROP_REASONS: readonly DropReason[] = [
  'bad_header', 'bad_frame', 'no_frames', 'too_many_frames', 'second_ack',
  'stale_epoch', 'retired_epoch', 'duplicate', 'over_budget', 'closed', 'internal_error',
];
const PARSE_ERRORS: ReadonlySet<DropReason> = new Set<DropReason>(['bad_header', 'bad_frame', 'no_frames', 'too_many_frames', 'second_ack']);
export function isParseError(r: DropReason): boolean {
  return PARSE_ERRORS.has(r);
}

/** Reset codes used by the core itself; application codes are free above 0x100. */
export const RESET_CODE = {
  /** the peer agent restarted */
  PEER_RESTART: 1,
  /** the connection closed */
  CONNECTION_CLOSED: 2,
  /** too many streams (kept for compatibility: the core now refuses them with CLOSE) */
  STREAM_LIMIT: 3,
  /** TCP connection reset / error on the far side */
  TCP_RESET: 0x10,
  /** the far side could not connect the target */
  CONNECT_FAILED: 0x11,
} as const;

export const CLOSE_CODE = {
  NONE: 0,
  IDLE: 1,
  PROTOCOL: 2,
  FLOW_CONTROL: 3,
  APPLICATION: 0x100,
} as const;
