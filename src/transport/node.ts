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
  /** the flush running now was one of those */
  private inImmediate = false;
  private handlers = new Map<number, StreamHandlers>();
  private flushing = false;
  /** something asked for a flush while one ran: it loops once more */
  private flushAgain = false;
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

  /**
   * Feeds one datagram (already decrypted) into the connection and flushes at once: what
   * it made readable is written to its socket, and what it let go (an ACK, data the window
   * held back) is sent, in this same call. Every datagram and every TCP read is its own
   * I/O callback anyway, so deferring would coalesce nothing and only add a hop.
   */
  receive(buf: Uint8Array): void {
    this.conn.receive(buf, this.clock());
    this.flush();
  }

  bind(id: number, h: StreamHandlers): void {
    this.handlers.set(id, h);
  }

  unbind(id: number): void {
    this.handlers.delete(id);
  }

  /** flush() after the current turn (coalesced): for callers that are not on the data path */
  scheduleFlush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    queueMicrotask(() => {
      this.flushQueued = false;
      this.flush();
    });
  }

  /** sends what the connection has now and dispatches its events; re-entrant calls loop once more */
  flush(): void {
    if (this.flushing) {
      this.flushAgain = true;
      return;
    }
    this.flushing = true;
    try {
      for (let round = 0; round < 8; round++) {
        this.flushAgain = false;
        const now = this.clock();
        for (const pkt of this.conn.poll(now)) this.sendDatagram(pkt);
        const evs = this.conn.pollEvents();
        if (evs.length === 0 && !this.flushAgain) break;
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
    if (!this.inImmediate) this.immediateRuns = 0;
    const d = this.conn.nextDeadline();
    if (d === Infinity) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      this.timerAt = Infinity;
      return;
    }
    // The armed timer stays while the deadline lies within its millisecond (timers have no
    // finer grain). It is re-armed when the deadline moved earlier, and also when it moved
    // a millisecond or more later: then what it was set for is gone (the ACK it would have
    // sent rode on a reply, the packet whose PTO it was got acknowledged), and letting it
    // fire would be a wake-up that finds nothing due. Request/response traffic moves the
    // deadline back and forth between the ACK delay and the PTO with every message: two
    // list insertions per message instead of a loop turn, a flush and the same re-arm.
    if (this.timer && d >= this.timerAt - 0.5 && d < this.timerAt + 1) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const delay = d - this.clock();
    // a deadline due now (an ACK owed at once, a probe, a packet the pacer lets go) runs on
    // the next loop turn, but only a few times in a row, so a deadline that flush() cannot
    // retire never becomes a busy loop. One still ahead waits for a timer, even when
    // that is less than setTimeout's ~1 ms: turning the loop until it comes would cost a
    // wake-up per turn (every message, while the tail copies of a lossy path are scheduled)
    if (delay <= 0 && this.immediateRuns < 4) {
      if (this.immediate) return;
      this.immediateRuns++;
      this.immediate = setImmediate(() => {
        this.immediate = null;
        this.inImmediate = true;
        try {
          this.flush();
        } finally {
          this.inImmediate = false;
        }
      });
      return;
    }
    // whole milliseconds: Node keeps one timer list per distinct duration, so a fractional
    // one would allocate a list (and a priority-queue entry) for every arming
    const ms = Math.max(1, Math.ceil(delay));
    this.timerAt = this.clock() + ms;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.timerAt = Infinity;
      this.flush();
    }, ms);
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
    // built and sent in this callback (no hop): the floor's one read, one send
    driver.flush();
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

  /** the socket's buffer was full: nothing more is read until it drains (reading grants the peer credit) */
  let waitingForDrain = false;
  const onDrain = (): void => {
    waitingForDrain = false;
    drainToSocket();
    driver.scheduleFlush();
  };

  const drainToSocket = (): void => {
    if (waitingForDrain) return;
    mark(Stage.delivered, driver.traceFlow);
    const first = conn.read(id);
    if (first) {
      let c = conn.read(id);
      let full: boolean;
      if (!c) {
        // one chunk (a request/response message): a plain write, no cork/uncork
        full = !socket.write(first);
        markBytes(Stage.written, driver.traceFlow, first);
      } else {
        // the chunks of this writev, for their `written` marks (only while tracing)
        const traced: Uint8Array[] | null = traceEnabled ? [first, c] : null;
        // everything readable now goes out in one writev: one system call per flush, not per packet
        socket.cork();
        try {
          // a chunk read is written even into a full buffer (it is no longer the connection's)
          full = !socket.write(first);
          full = !socket.write(c) || full;
          while (!full && (c = conn.read(id))) {
            traced?.push(c);
            full = !socket.write(c);
          }
        } finally {
          socket.uncork();
          if (traced) for (const t of traced) markBytes(Stage.written, driver.traceFlow, t);
        }
      }
      if (full) {
        // reading more would only buffer in the socket: wait for 'drain'
        waitingForDrain = true;
        socket.once('drain', onDrain);
        return;
      }
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
