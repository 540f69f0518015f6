// The streams of one peer: one reliable transport Connection (src/transport) per peer, each
// local TCP connection a stream on it. Outgoing: an accepted loopback socket opens a stream
// whose target names what to reach on the peer. Incoming: the peer's stream is connected to
// the local target (MPyC's own listener) by the agent's LocalConnector, which retries
// until it listens.
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { Connection, ConnectionDriver, bindStreamToSocket } from '../transport/index.js';
import { RESET_CODE, type TransportEvent } from '../transport/types.js';
import type { StreamTarget } from './types.js';
import type { LocalConnector } from './local-connector.js';
import { ChurnGuard } from './churn-guard.js';

// Stream target bytes (the `target` of the transport's stream open):
//   0x01 | party u16 BE   — MPyC mode: "party j's own listener" (j must be the receiver's index)
//   0x02 | port  u16 BE   — generic mode: a loopback port the receiver allows
const TARGET_MPYC = 0x01;
const TARGET_PORT = 0x02;

export function encodeTarget(t: StreamTarget): Uint8Array {
  const v = t.kind === 'mpyc' ? t.party : t.port;
  return new Uint8Array([t.kind === 'mpyc' ? TARGET_MPYC : TARGET_PORT, (v >> 8) & 0xff, v & 0xff]);
}

export function decodeTarget(b: Uint8Array): StreamTarget | null {
  if (b.length !== 3) return null;
  const v = (b[1]! << 8) | b[2]!;
  if (b[0] === TARGET_MPYC) return { kind: 'mpyc', party: v };
  if (b[0] === TARGET_PORT && v > 0) return { kind: 'port', port: v };
  return null;
}

export interface StreamsOptions {
  /** 0 or 1: bytewise-smaller static key takes 0 */
  side: 0 | 1;
  /** hands one transport datagram to the session layer */
  sendDatagram: (d: Uint8Array) => void;
  /** where an incoming stream with this target goes, or an error string to refuse it */
  resolveTarget: (t: StreamTarget) => { host: string; port: number } | string;
  /** connects incoming streams to their local target (shared by the agent's peers) */
  connector: LocalConnector;
  logger: Logger;
  idleTimeoutMs: number;
  /** the peer's party index: the flow number of the stage-trace marks (src/common/stage-trace.ts) */
  peerIndex?: number;
  /** free bytes before / after every transport packet handed to sendDatagram (ConnectionOptions) */
  headroom?: number;
  tailroom?: number;
  /** the congestion window's bound in bytes: what the peer's UDP socket can buffer (ConnectionOptions) */
  maxCongestionWindow?: number;
}

interface PendingIncoming {
  cancel: () => void;
  finReceived: boolean;
}

export class PeerStreams {
  private conn!: Connection;
  private driver!: ConnectionDriver;
  private readonly pending = new Map<number, PendingIncoming>();
  private readonly sockets = new Set<Socket>();
  private stopped = false;
  /** retransmissions of the connections this one replaced (a counter never goes down) */
  private retransmittedBefore = 0;
  /** the largest packet the current path could carry (DPLPMTUD's bound), for new connections too */
  private pathMaxPacket: number | undefined;
  /** how soon the peer's packets are taken again after its packets closed a connection */
  private readonly churn = new ChurnGuard(performance.now());

  constructor(private readonly opts: StreamsOptions) {
    this.newConnection();
  }

  get connection(): Connection { return this.conn; }

  private newConnection(): void {
    if (this.conn) this.retransmittedBefore += this.conn.stats().packetsRetransmitted;
    this.conn = new Connection({
      side: this.opts.side, idleTimeoutMs: this.opts.idleTimeoutMs, keepAliveMs: 5_000,
      headroom: this.opts.headroom, tailroom: this.opts.tailroom, maxCongestionWindow: this.opts.maxCongestionWindow,
      pathMaxPacketSize: this.pathMaxPacket,
    }, performance.now());
    this.driver = new ConnectionDriver(this.conn, this.opts.sendDatagram);
    this.driver.traceFlow = this.opts.peerIndex ?? 0;
    const driver = this.driver;
    driver.onEvent = (e) => { if (driver === this.driver) this.onEvent(e); };
  }

  /** Transport packets retransmitted to this peer since start (all connections). */
  retransmittedTotal(): number {
    return this.retransmittedBefore + this.conn.stats().packetsRetransmitted;
  }

  /**
   * The transport's smoothed RTT once it has a real sample on the current path (the
   * estimator starts from a guess, and restarts on every path change), else undefined.
   */
  measuredRttMs(): number | undefined {
    const st = this.conn.stats();
    return st.minRttMs > 0 ? st.smoothedRttMs : undefined;
  }

  /** Bytes sent and not yet acknowledged (what a graceful stop waits for). */
  get bytesInFlight(): number {
    return this.conn.stats().bytesInFlight;
  }

  /** Local connections (accepted, or connected to the local target) open now. */
  get localSockets(): number {
    return this.sockets.size;
  }

  /**
   * The peer is gone: reset every local connection and start a fresh transport connection
   * (its new epoch tells the peer, when it returns, that the old streams are gone).
   */
  closeLocal(reason: string): void {
    if (this.stopped) return;
    this.opts.logger.warn({ reason, connections: this.sockets.size + this.pending.size }, 'closing local connections to the peer');
    for (const id of [...this.pending.keys()]) this.cancelPending(id);
    for (const s of this.sockets) s.resetAndDestroy();
    this.driver.stop();
    this.newConnection();
  }

  /** A decrypted transport datagram from the peer (ignored while a churn hold lasts). */
  receive(datagram: Uint8Array): void {
    if (!this.stopped && this.churn.listening(performance.now())) this.driver.receive(datagram);
  }

  /**
   * The path changed (relay ↔ direct, new address) or the session was re-established;
   * `pathMaxPacket` is the largest transport packet the new path could carry: the
   * transport probes up to it (DPLPMTUD) from its base size.
   */
  pathChanged(pathMaxPacket: number): void {
    this.pathMaxPacket = pathMaxPacket;
    this.conn.setPathMaxPacketSize(pathMaxPacket);
    this.conn.pathChanged(performance.now());
    this.driver.scheduleFlush();
  }

  /** Carries an accepted local socket to the peer as a new stream. */
  attach(target: StreamTarget, socket: Socket): void {
    if (this.stopped) { socket.destroy(); return; }
    socket.setNoDelay(true);
    let id: number;
    try {
      id = this.conn.openStream(encodeTarget(target));
    } catch (err) {
      this.opts.logger.warn({ err: String(err) }, 'cannot open stream');
      socket.resetAndDestroy();
      return;
    }
    this.track(socket);
    bindStreamToSocket(this.driver, id, socket);
    this.driver.scheduleFlush();
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  }

  private onEvent(e: TransportEvent): void {
    switch (e.type) {
      case 'open': this.onOpen(e.id, e.target); break;
      case 'fin': { const p = this.pending.get(e.id); if (p) p.finReceived = true; break; }
      case 'reset': this.cancelPending(e.id); break;
      case 'peerRestarted':
        this.opts.logger.info({ oldEpoch: e.oldEpoch, newEpoch: e.newEpoch }, 'peer agent restarted: its old streams were reset');
        break;
      case 'connectionClosed': this.onConnectionClosed(e.reason, e.code); break;
      default:
        break; // readable/writable/closed for streams not bound yet: handled at binding
    }
  }

  /** The peer's packets (or our idle timer) closed the connection: a fresh one, held if this happens often. */
  private onConnectionClosed(reason: string, code: number): void {
    if (this.stopped) return;
    const now = performance.now();
    const holdMs = Math.round(this.churn.closed(now) - now);
    this.opts.logger.warn({ reason, code, holdMs }, holdMs > 0
      ? 'stream connection closed again soon; starting a new one that ignores the peer for a while'
      : 'stream connection closed; starting a new one');
    for (const id of [...this.pending.keys()]) this.cancelPending(id);
    this.driver.stop();
    this.newConnection();
  }

  private onOpen(id: number, targetBytes: Uint8Array): void {
    const target = decodeTarget(targetBytes);
    const resolved = target ? this.opts.resolveTarget(target) : 'malformed stream target';
    if (typeof resolved === 'string') {
      this.opts.logger.warn({ target: target ?? Buffer.from(targetBytes).toString('hex'), reason: resolved }, 'refused a stream from the peer');
      this.conn.reset(id, RESET_CODE.CONNECT_FAILED);
      this.driver.scheduleFlush();
      return;
    }
    const p: PendingIncoming = { finReceived: false, cancel: () => {} };
    this.pending.set(id, p);
    p.cancel = this.opts.connector.connect(resolved, (s) => {
      this.pending.delete(id);
      if (this.stopped || !this.conn.hasStream(id)) { s.destroy(); return; }
      this.track(s);
      bindStreamToSocket(this.driver, id, s, { finReceived: p.finReceived });
      this.driver.scheduleFlush();
    });
  }

  private cancelPending(id: number): void {
    const p = this.pending.get(id);
    if (!p) return;
    p.cancel();
    this.pending.delete(id);
  }

  stop(): void {
    this.stopped = true;
    for (const id of [...this.pending.keys()]) this.cancelPending(id);
    try { this.conn.close(); this.driver.flush(); } catch { /* closing anyway */ }
    this.driver.stop();
    for (const s of this.sockets) s.destroy();
  }
}
