// A small STUN Binding client that owns no socket: the caller supplies `send` (the
// agent's one shared UDP socket, pointed at the STUN server) and feeds every datagram
// that looks like STUN to `handleDatagram`. Retransmission follows RFC 8489 §6.2.1
// (RTO doubling per transmission, a final wait after the last), with a short initial
// RTO and few transmissions because a relay is the only server we ask and the agent
// prefers a quick answer (or a quick "no") over a 39.5 s worst case.
//
// Sans-I/O by default: every entry point takes `now` (ms, monotonic) and the caller
// schedules `tick(now)` at `nextDeadline()`. With `autoTimers: true` the client runs
// its own unref'd timer instead, for callers that have no scheduler.
import {
  BINDING_ERROR, BINDING_SUCCESS, encodeBindingRequest, newTransactionId, parseStun,
  type StunAddress,
} from './codec.js';

export interface StunClientOptions {
  /** sends one datagram to the STUN server */
  send: (datagram: Uint8Array) => void;
  /** initial retransmission timeout, ms (default 300) */
  rtoMs?: number;
  /** number of transmissions before giving up (default 4) */
  maxTransmissions?: number;
  /** run an internal timer instead of relying on the caller's tick() (default false) */
  autoTimers?: boolean;
  /** clock used with autoTimers (default performance.now) */
  clock?: () => number;
}

export class StunTimeoutError extends Error {
  constructor(public readonly transmissions: number) {
    super(`no STUN Binding response after ${transmissions} transmissions`);
    this.name = 'StunTimeoutError';
  }
}

export class StunErrorResponse extends Error {
  constructor(public readonly code: number, public readonly reason: string) {
    super(`STUN Binding error response ${code} ${reason}`);
    this.name = 'StunErrorResponse';
  }
}

interface Pending {
  txidKey: string;
  request: Uint8Array;
  transmissions: number;
  rto: number;
  deadline: number;
  resolve: (a: BindingAnswer) => void;
  reject: (e: Error) => void;
}

/** A Binding success: the reflexive address, and the server's other endpoint if it named one (RFC 5780 OTHER-ADDRESS). */
export interface BindingAnswer { mapped: StunAddress; other?: StunAddress }

export class StunClient {
  private readonly send: (d: Uint8Array) => void;
  private readonly rto0: number;
  private readonly maxTx: number;
  private readonly pending = new Map<string, Pending>();
  private readonly auto: boolean;
  private readonly clock: () => number;
  private timer: NodeJS.Timeout | undefined;
  /** datagrams that looked like STUN but matched nothing or were malformed */
  droppedDatagrams = 0;

  constructor(opts: StunClientOptions) {
    this.send = opts.send;
    this.rto0 = opts.rtoMs ?? 300;
    this.maxTx = opts.maxTransmissions ?? 4;
    this.auto = opts.autoTimers ?? false;
    this.clock = opts.clock ?? (() => performance.now());
  }

  /** Start a Binding transaction; resolves with the reflexive (mapped) address. */
  request(now: number = this.clock()): Promise<StunAddress> {
    return this.binding(now).then((a) => a.mapped);
  }

  /** Start a Binding transaction; resolves with the whole answer. */
  binding(now: number = this.clock()): Promise<BindingAnswer> {
    const txid = newTransactionId();
    const request = encodeBindingRequest(txid);
    return new Promise<BindingAnswer>((resolve, reject) => {
      const p: Pending = {
        txidKey: Buffer.from(txid).toString('latin1'), request, transmissions: 1,
        rto: this.rto0, deadline: now + this.rto0, resolve, reject,
      };
      this.pending.set(p.txidKey, p);
      this.safeSend(request);
      this.rearm();
    });
  }

  /** Feed a received datagram. Returns true when it answered one of our transactions. */
  handleDatagram(buf: Uint8Array, _now: number = this.clock()): boolean {
    const r = parseStun(buf);
    if (!r.ok) { this.droppedDatagrams++; return false; }
    const m = r.message;
    const key = Buffer.from(m.transactionId).toString('latin1');
    const p = this.pending.get(key);
    if (!p) { this.droppedDatagrams++; return false; }
    if (m.type === BINDING_SUCCESS) {
      // a response with comprehension-required attributes we do not know is discarded
      // (RFC 8489 §7.3.3); keep waiting for a retransmission's answer
      if (m.unknownRequired.length > 0 || !m.mappedAddress) { this.droppedDatagrams++; return false; }
      this.finish(p);
      p.resolve(m.otherAddress ? { mapped: m.mappedAddress, other: m.otherAddress } : { mapped: m.mappedAddress });
      return true;
    }
    if (m.type === BINDING_ERROR) {
      this.finish(p);
      p.reject(new StunErrorResponse(m.errorCode ?? 0, m.errorReason ?? ''));
      return true;
    }
    this.droppedDatagrams++;
    return false;
  }

  /** Retransmit or time out whatever is due at `now`. */
  tick(now: number = this.clock()): void {
    for (const p of [...this.pending.values()]) {
      if (p.deadline > now) continue;
      if (p.transmissions >= this.maxTx) {
        this.finish(p);
        p.reject(new StunTimeoutError(p.transmissions));
        continue;
      }
      p.transmissions++;
      p.rto *= 2;
      p.deadline = now + p.rto;
      this.safeSend(p.request);
    }
    this.rearm();
  }

  /** Earliest time tick() has work to do, or undefined when idle. */
  nextDeadline(): number | undefined {
    let d: number | undefined;
    for (const p of this.pending.values()) if (d === undefined || p.deadline < d) d = p.deadline;
    return d;
  }

  /** Abort every pending transaction (e.g. the socket closed). */
  close(): void {
    for (const p of [...this.pending.values()]) {
      this.finish(p);
      p.reject(new Error('STUN client closed'));
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private finish(p: Pending): void {
    this.pending.delete(p.txidKey);
  }

  private safeSend(d: Uint8Array): void {
    try { this.send(d); } catch { /* a failed send is a lost packet: retransmission covers it */ }
  }

  private rearm(): void {
    if (!this.auto) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const d = this.nextDeadline();
    if (d === undefined) return;
    this.timer = setTimeout(() => this.tick(this.clock()), Math.max(0, d - this.clock()));
    this.timer.unref();
  }
}

/**
 * Convenience for tools and tests: one Binding request over a dedicated dgram socket.
 */
export async function stunBindingOverSocket(
  socket: import('node:dgram').Socket, host: string, port: number,
  opts: Omit<StunClientOptions, 'send' | 'autoTimers'> = {},
): Promise<StunAddress> {
  const client = new StunClient({ ...opts, autoTimers: true, send: (d) => socket.send(d, port, host) });
  const onMsg = (msg: Buffer): void => { client.handleDatagram(msg); };
  socket.on('message', onMsg);
  try {
    return await client.request();
  } finally {
    socket.off('message', onMsg);
    client.close();
  }
}
