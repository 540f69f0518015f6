// The streams of one peer: one reliable transport Connection (src/transport) per peer, each
// local TCP connection a stream on it. Outgoing: an accepted loopback socket opens a stream
// whose target names what to reach on the peer. Incoming: the peer's stream is connected to
// the local target (MPyC's own listener), retrying as MPyC itself does until it exists.
import { connect, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { Connection, ConnectionDriver, bindStreamToSocket } from '../transport/index.js';
import { RESET_CODE, type TransportEvent } from '../transport/types.js';
import type { StreamTarget } from './types.js';

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

/**
 * A stream from the peer retries connecting to its local target (MPyC's listener) first
 * after 10 ms, doubling up to every 250 ms: MPyC's own listener usually appears within
 * moments of the peer's first bytes, and every millisecond here delays the first round.
 */
export const CONNECT_RETRY_FIRST_MS = 10;
export const CONNECT_RETRY_MS = 250;

export interface StreamsOptions {
  /** 0 or 1: bytewise-smaller static key takes 0 */
  side: 0 | 1;
  /** hands one transport datagram to the session layer */
  sendDatagram: (d: Uint8Array) => void;
  /** where an incoming stream with this target goes, or an error string to refuse it */
  resolveTarget: (t: StreamTarget) => { host: string; port: number } | string;
  logger: Logger;
  idleTimeoutMs: number;
}

interface PendingIncoming {
  socket?: Socket;
  retryTimer?: NodeJS.Timeout;
  finReceived: boolean;
  cancelled: boolean;
  attempts: number;
}

export class PeerStreams {
  private conn!: Connection;
  private driver!: ConnectionDriver;
  private readonly pending = new Map<number, PendingIncoming>();
  private readonly sockets = new Set<Socket>();
  private stopped = false;
  /** retransmissions of the connections this one replaced (a counter never goes down) */
  private retransmittedBefore = 0;

  constructor(private readonly opts: StreamsOptions) {
    this.newConnection();
  }

  get connection(): Connection { return this.conn; }

  private newConnection(): void {
    if (this.conn) this.retransmittedBefore += this.conn.stats().packetsRetransmitted;
    this.conn = new Connection({ side: this.opts.side, idleTimeoutMs: this.opts.idleTimeoutMs, keepAliveMs: 5_000 }, performance.now());
    this.driver = new ConnectionDriver(this.conn, this.opts.sendDatagram);
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

  /** A decrypted transport datagram from the peer. */
  receive(datagram: Uint8Array): void {
    if (!this.stopped) this.driver.receive(datagram);
  }

  /** The path changed (relay ↔ direct, new address) or the session was re-established. */
  pathChanged(): void {
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
      case 'connectionClosed':
        if (this.stopped) break;
        this.opts.logger.warn({ reason: e.reason, code: e.code }, 'stream connection closed; starting a new one');
        for (const id of [...this.pending.keys()]) this.cancelPending(id);
        if (!this.stopped) { this.driver.stop(); this.newConnection(); }
        break;
      default:
        break; // readable/writable/closed for streams not bound yet: handled at binding
    }
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
    const p: PendingIncoming = { finReceived: false, cancelled: false, attempts: 0 };
    this.pending.set(id, p);
    const tryConnect = (): void => {
      if (p.cancelled || this.stopped) return;
      p.attempts++;
      const s = connect({ host: resolved.host, port: resolved.port, allowHalfOpen: true });
      p.socket = s;
      s.setNoDelay(true);
      const onError = (err: NodeJS.ErrnoException): void => {
        s.destroy();
        if (p.cancelled || this.stopped) return;
        // not listening yet (MPyC started later): retry like MPyC's own connect loop
        if (p.attempts === 1 || p.attempts % 100 === 0) {
          this.opts.logger.info({ port: resolved.port, code: err.code, attempts: p.attempts }, 'waiting for the local listener');
        }
        p.retryTimer = setTimeout(tryConnect, Math.min(CONNECT_RETRY_MS, CONNECT_RETRY_FIRST_MS * 2 ** (p.attempts - 1)));
      };
      s.once('error', onError);
      s.once('connect', () => {
        s.off('error', onError);
        this.pending.delete(id);
        if (p.cancelled || this.stopped || !this.conn.hasStream(id)) { s.destroy(); return; }
        this.track(s);
        bindStreamToSocket(this.driver, id, s, { finReceived: p.finReceived });
        this.driver.scheduleFlush();
      });
    };
    tryConnect();
  }

  private cancelPending(id: number): void {
    const p = this.pending.get(id);
    if (!p) return;
    p.cancelled = true;
    if (p.retryTimer) clearTimeout(p.retryTimer);
    p.socket?.destroy();
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
