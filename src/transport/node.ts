// Thin Node adapter: runs a Connection on real timers, and binds streams to net.Sockets
// (back-pressure: pause the socket when write() accepts less; FIN ⇄ end(); RST ⇄ reset).
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Connection } from './connection.js';
import { RESET_CODE, type TransportEvent } from './types.js';
import { Stage, mark, markBytes, traceEnabled } from '../common/stage-trace.js';

export interface StreamHandlers {
  onReadable(): void;
  onFin(): void;
  onReset(code: number): void;
  onWritable(): void;
  onClosed(): void;
}

export class ConnectionDriver {
  private timer: NodeJS.Timeout | null = null;
  private timerAt = Infinity;
  private immediate: NodeJS.Immediate | null = null;
  /** consecutive flushes scheduled with setImmediate (bounded: see arm()) */
  private immediateRuns = 0;
  private handlers = new Map<number, StreamHandlers>();
  private flushing = false;
  private flushQueued = false;
  /** events for streams nobody bound (open, peerRestarted, connectionClosed, …) */
  onEvent: (e: TransportEvent) => void = () => {};
  /** the flow number of this connection's stage-trace marks (the agent: the peer's party index) */
  traceFlow = 0;

  constructor(
    readonly conn: Connection,
    private readonly sendDatagram: (buf: Uint8Array) => void,
    private readonly clock: () => number = () => performance.now(),
  ) {}

  /** feeds one datagram (already decrypted) into the connection */
  receive(buf: Uint8Array): void {
    this.conn.receive(buf, this.clock());
    this.scheduleFlush();
  }

  bind(id: number, h: StreamHandlers): void {
    this.handlers.set(id, h);
  }

  unbind(id: number): void {
    this.handlers.delete(id);
  }

  /** sends what the connection has now and dispatches its events (coalesced per tick) */
  scheduleFlush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    queueMicrotask(() => {
      this.flushQueued = false;
      this.flush();
    });
  }

  flush(): void {
    if (this.flushing) return;
    this.flushing = true;
    try {
      for (let round = 0; round < 8; round++) {
        const now = this.clock();
        for (const pkt of this.conn.poll(now)) this.sendDatagram(pkt);
        const evs = this.conn.pollEvents();
        if (evs.length === 0) break;
        for (const e of evs) this.dispatch(e);
      }
    } finally {
      this.flushing = false;
    }
    this.arm();
  }

  private dispatch(e: TransportEvent): void {
    const h = 'id' in e && e.type !== 'open' ? this.handlers.get(e.id) : undefined;
    if (!h) {
      this.onEvent(e);
      return;
    }
    switch (e.type) {
      case 'readable':
        h.onReadable();
        break;
      case 'fin':
        h.onFin();
        break;
      case 'reset':
        h.onReset(e.code);
        break;
      case 'writable':
        h.onWritable();
        break;
      case 'closed':
        this.handlers.delete(e.id);
        h.onClosed();
        break;
    }
  }

  private arm(): void {
    const d = this.conn.nextDeadline();
    if (d === Infinity) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      this.timerAt = Infinity;
      return;
    }
    // a deadline that moved later (the PTO after every send, the idle timer) keeps the
    // armed timer: it fires early, flush() finds little to do and re-arms; far cheaper
    // than clearing and setting a timer for every packet
    if (this.timer && d >= this.timerAt - 0.5) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const delay = Math.max(0, d - this.clock());
    // setTimeout cannot wait less than ~1 ms: a deadline closer than that (an ACK or a
    // paced packet due now) runs on the next loop turn instead, but only a few times in a
    // row, so a deadline that flush() cannot retire never becomes a busy loop
    if (delay < 1 && this.immediateRuns < 4) {
      if (this.immediate) return;
      this.immediateRuns++;
      this.immediate = setImmediate(() => {
        this.immediate = null;
        this.flush();
      });
      return;
    }
    this.immediateRuns = 0;
    this.timerAt = d;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.timerAt = Infinity;
      this.flush();
    }, delay);
    this.timer.unref?.();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.immediate) clearImmediate(this.immediate);
    this.immediate = null;
  }
}

/**
 * Carries one stream over a TCP socket both ways. Call after openStream() (local side) or
 * on the 'open' event (remote side, once the target's socket connected).
 */
export function bindStreamToSocket(
  driver: ConnectionDriver, id: number, socket: Socket,
  /** finReceived: the peer's FIN already arrived before this binding (its 'fin' event went elsewhere) */
  opts: { finReceived?: boolean } = {},
): void {
  const conn = driver.conn;
  let pendingChunk: Uint8Array | null = null;
  let ended = false;
  let sawFin = opts.finReceived ?? false;
  let endedSocket = false;

  const pushToConn = (chunk: Uint8Array): boolean => {
    const n = conn.write(id, chunk);
    if (n < chunk.length) {
      pendingChunk = chunk.subarray(n);
      socket.pause();
      return false;
    }
    return true;
  };
  socket.on('data', (chunk: Buffer) => {
    markBytes(Stage.tcpRead, driver.traceFlow, chunk);
    if (pendingChunk) {
      // should not happen while paused, but keep order if it does
      pendingChunk = concat(pendingChunk, chunk);
      return;
    }
    pushToConn(chunk);
    driver.scheduleFlush();
  });
  socket.on('end', () => {
    ended = true;
    if (!pendingChunk) conn.finish(id);
    driver.scheduleFlush();
  });
  socket.on('error', () => {
    conn.reset(id, RESET_CODE.TCP_RESET);
    driver.scheduleFlush();
  });
  socket.on('close', (hadError: boolean) => {
    if (hadError || (!ended && !sawFin)) conn.reset(id, RESET_CODE.TCP_RESET);
    driver.scheduleFlush();
  });

  const drainToSocket = (): void => {
    mark(Stage.delivered, driver.traceFlow);
    let c: Uint8Array | null;
    // the chunks of this writev, for their `written` marks (only while tracing)
    const traced: Uint8Array[] | null = traceEnabled ? [] : null;
    // everything readable now goes out in one writev: one system call per flush, not per packet
    socket.cork();
    try {
      while ((c = conn.read(id))) {
        traced?.push(c);
        if (!socket.write(c)) {
          // reading more would only buffer in the socket: wait for 'drain'
          socket.once('drain', () => {
            drainToSocket();
            driver.scheduleFlush();
          });
          return;
        }
      }
    } finally {
      socket.uncork();
      if (traced) for (const t of traced) markBytes(Stage.written, driver.traceFlow, t);
    }
    // the peer's FIN goes to the socket only after every byte before it was written
    if (sawFin && !endedSocket) {
      endedSocket = true;
      socket.end();
    }
  };

  driver.bind(id, {
    onReadable: drainToSocket,
    onFin: () => {
      sawFin = true;
      drainToSocket();
    },
    onReset: () => socket.resetAndDestroy(),
    onWritable: () => {
      if (pendingChunk) {
        const c = pendingChunk;
        pendingChunk = null;
        if (!pushToConn(c)) return;
        if (ended) conn.finish(id);
      }
      socket.resume();
      driver.scheduleFlush();
    },
    onClosed: () => {
      if (!socket.destroyed && sawFin && ended) socket.destroy();
    },
  });
  drainToSocket();
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
