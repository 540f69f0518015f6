// An MPyC-like party over real TCP: reproduces MPyC's connection pattern, greeting,
// framing and shutdown exactly (docs/mpyc-pattern.md) and checks every byte it receives.
// Used to test mpyc-agent end to end without Python: if MPyC would connect, so does this,
// and if a single byte is lost, reordered or altered on the way, this fails and says where.
import { createServer, connect, type Server, type Socket } from 'node:net';
import { lookup } from 'node:dns/promises';
import { performance } from 'node:perf_hooks';
import {
  ByteQueue, HEADER_BYTES, MPYC_DEFAULT_BASE, MPYC_RETRY_MS, PID_BYTES, PRSS_KEY_BYTES,
  defaultThreshold, encodeGreeting, encodeHeader, parseHeader, picklePid, prssKeyCount,
} from './mpyc-wire.js';
import { bulkPayload, programCounter, prssKey, roundPayload, type MessageKind } from './mpyc-payload.js';

export interface PartyOptions {
  /** number of parties (MPyC -M) */
  m: number;
  /** this party's index (MPyC -I) */
  pid: number;
  /** MPyC -B; party k is at port basePort+k (default 11365) */
  basePort?: number;
  /** override the port of each party (index = pid); default basePort+k */
  ports?: number[];
  /** host the other parties are reached at; MPyC uses 'localhost' */
  host?: string;
  /** address this party's listener binds (default 127.0.0.1; MPyC itself binds all interfaces) */
  listenHost?: string;
  /** rounds of small messages, every party to every other (default 10) */
  rounds?: number;
  /** payload bytes of a round message (default 32) */
  msgSize?: number;
  /** payload bytes of the one bulk message per ordered pair; 0 for none (default 1 MiB) */
  bulkBytes?: number;
  /** all parties must use the same seed (default "1") */
  seed?: string | number;
  /** give up after this long in total (default 60 s) */
  timeoutMs?: number;
  /** connect retry interval (MPyC: 100 ms) */
  retryMs?: number;
  /** MPyC -T; default (m-1)//2 */
  threshold?: number;
  /** send PRSS keys in the greeting as MPyC does unless --no-prss (default true) */
  prss?: boolean;
}

export interface PartyStats {
  pid: number;
  m: number;
  /** start → a connection with every other party identified */
  connectedMs: number;
  /** start → first byte received from any party */
  firstByteMs: number | null;
  /** start → first message received and verified */
  firstMessageMs: number | null;
  /** per round: this party's send → all of the round's messages received */
  roundLatenciesMs: number[];
  /** wall clock (ms since the epoch) when run() began: the party is ready to connect and listen */
  startedAtMs: number;
  /** wall clock when round 0 completed at this party, or null with no rounds; with startedAtMs of
   *  every party it gives the first round from the moment the last party started (bench goal 5) */
  firstRoundDoneAtMs: number | null;
  /** bulk send → every bulk message received (0 when there is none) */
  bulkMs: number;
  /** start → every connection closed after shutdown */
  totalMs: number;
  bytesSent: number;
  bytesReceived: number;
  /** messages received and checked byte for byte (excluding the greeting) */
  messagesVerified: number;
  /** connect attempts (including failed ones) to all higher-index parties */
  connectAttempts: number;
  /** accepted connections that closed before sending a greeting (MPyC logs a traceback) */
  unidentifiedConnections: number;
}

/** precompute round payloads up to this many bytes in total */
const PRECOMPUTE_BYTES = 32 << 20;

export class MpycSimError extends Error {
  override name = 'MpycSimError';
}

interface Label { kind: MessageKind; round: number; idx: number; size: number; pc: bigint }

type Stage = 'pid' | 'keys' | 'header' | 'payload';

interface Conn {
  socket: Socket;
  peer: number | null; // null until an accepted connection's greeting is read
  stage: Stage;
  queue: ByteQueue;
  pendingLabel: Label | null;
  got: Set<number>; // label idx received from this peer
  gotShutdown: boolean;
  closed: boolean;
}

export function runParty(opts: PartyOptions): Promise<PartyStats> {
  return new Party(opts).run();
}

class Party {
  private readonly m: number;
  private readonly pid: number;
  private readonly ports: number[];
  private readonly host: string;
  private readonly listenHost: string;
  private readonly rounds: number;
  private readonly msgSize: number;
  private readonly bulkBytes: number;
  private readonly seed: string;
  private readonly timeoutMs: number;
  private readonly retryMs: number;
  private readonly t: number;
  private readonly prss: boolean;

  private readonly labels = new Map<bigint, Label>();
  private readonly labelList: Label[] = [];
  private readonly arrivals: number[];
  private readonly waiters = new Map<number, () => void>();
  private readonly conns: Conn[] = [];
  private readonly peers: (Conn | undefined)[];
  private server: Server | undefined;
  private t0 = 0;
  private phase = 'starting';
  private failure: MpycSimError | null = null;
  /** the one wait in progress (phases are sequential), rejected when the run fails */
  private pendingReject: ((e: MpycSimError) => void) | null = null;
  private finished = false;
  private connectedWaiter: (() => void) | null = null;
  private closedWaiter: (() => void) | null = null;
  private readonly stats: PartyStats;
  /** (from*m + to) → payload per round, for the pairs involving this party */
  private roundCache: Map<number, Buffer[]> | null = null;

  constructor(o: PartyOptions) {
    if (!Number.isInteger(o.m) || o.m < 1 || o.m > 65536) throw new MpycSimError(`m must be an integer 1..65536, got ${o.m}`);
    if (!Number.isInteger(o.pid) || o.pid < 0 || o.pid >= o.m) throw new MpycSimError(`pid must be an integer 0..${o.m - 1}, got ${o.pid}`);
    this.m = o.m;
    this.pid = o.pid;
    const base = o.basePort ?? MPYC_DEFAULT_BASE;
    this.ports = o.ports ?? Array.from({ length: o.m }, (_, k) => base + k);
    if (this.ports.length !== o.m || this.ports.some((p) => !Number.isInteger(p) || p < 1 || p > 65535)) {
      throw new MpycSimError(`ports must be ${o.m} ports in 1..65535 (base ${base} + ${o.m - 1} is ${base + o.m - 1})`);
    }
    this.host = o.host ?? 'localhost';
    this.listenHost = o.listenHost ?? '127.0.0.1';
    this.rounds = o.rounds ?? 10;
    this.msgSize = o.msgSize ?? 32;
    this.bulkBytes = o.bulkBytes ?? 1 << 20;
    this.seed = String(o.seed ?? '1');
    this.timeoutMs = o.timeoutMs ?? 60_000;
    this.retryMs = o.retryMs ?? MPYC_RETRY_MS;
    this.t = o.threshold ?? defaultThreshold(o.m);
    this.prss = o.prss ?? true;
    for (const [name, v, max] of [['rounds', this.rounds, 1e6], ['msgSize', this.msgSize, 0xffffffff], ['bulkBytes', this.bulkBytes, 1 << 30]] as const) {
      if (!Number.isInteger(v) || v < 0 || v > max) throw new MpycSimError(`${name} must be an integer 0..${max}, got ${v}`);
    }
    if (!Number.isInteger(this.t) || this.t < 0 || 2 * this.t >= this.m) throw new MpycSimError(`threshold ${this.t} too large for ${this.m} parties`);

    const add = (kind: MessageKind, round: number, size: number): void => {
      const pc = programCounter(this.seed, kind, round);
      if (this.labels.has(pc)) throw new MpycSimError(`program counter collision for ${kind} ${round}; use another seed`);
      const l: Label = { kind, round, idx: this.labelList.length, size, pc };
      this.labels.set(pc, l);
      this.labelList.push(l);
    };
    for (let r = 0; r < this.rounds; r++) add('round', r, this.msgSize);
    if (this.bulkBytes > 0) add('bulk', 0, this.bulkBytes);
    add('shutdown', 0, picklePid(0).length); // size checked per sender below
    this.arrivals = new Array<number>(this.labelList.length).fill(0);
    if (2 * (this.m - 1) * this.rounds * this.msgSize <= PRECOMPUTE_BYTES) {
      this.roundCache = new Map();
      for (const j of this.others()) {
        for (const [from, to] of [[this.pid, j], [j, this.pid]] as const) {
          this.roundCache.set(from * this.m + to, Array.from({ length: this.rounds }, (_, r) => roundPayload(this.seed, from, to, r, this.msgSize)));
        }
      }
    }
    this.peers = new Array<Conn | undefined>(this.m);
    this.stats = {
      pid: this.pid, m: this.m, connectedMs: 0, firstByteMs: null, firstMessageMs: null, roundLatenciesMs: [], startedAtMs: 0, firstRoundDoneAtMs: null,
      bulkMs: 0, totalMs: 0, bytesSent: 0, bytesReceived: 0, messagesVerified: 0, connectAttempts: 0, unidentifiedConnections: 0,
    };
  }

  async run(): Promise<PartyStats> {
    this.t0 = performance.now();
    this.stats.startedAtMs = performance.timeOrigin + this.t0;
    const timer = setTimeout(() => this.fail(`timeout after ${this.timeoutMs} ms while ${this.phase}${this.missing()}`), this.timeoutMs);
    try {
      await this.start();
      this.stats.connectedMs = this.now();
      for (let r = 0; r < this.rounds; r++) {
        this.phase = `round ${r}`;
        const s = performance.now();
        for (const j of this.others()) this.send(j, this.labelList[r]!, this.roundBytes(this.pid, j, r));
        await this.waitAll(r);
        const end = performance.now();
        this.stats.roundLatenciesMs.push(end - s);
        if (r === 0) this.stats.firstRoundDoneAtMs = performance.timeOrigin + end;
      }
      if (this.bulkBytes > 0) {
        this.phase = 'bulk';
        const l = this.labelList[this.rounds]!;
        const s = performance.now();
        for (const j of this.others()) this.send(j, l, bulkPayload(this.seed, this.pid, j, this.bulkBytes));
        await this.waitAll(l.idx);
        this.stats.bulkMs = performance.now() - s;
      }
      await this.shutdown();
      this.stats.totalMs = this.now();
      this.finished = true;
      return this.stats;
    } catch (err) {
      this.finished = true;
      for (const c of this.conns) c.socket.destroy();
      this.server?.close();
      throw err instanceof MpycSimError ? err : new MpycSimError(`party ${this.pid}: ${(err as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  }

  // ---- start-up: Runtime.start() ----

  private async start(): Promise<void> {
    if (this.m === 1) return;
    const connected = new Promise<void>((resolve) => { this.connectedWaiter = resolve; });
    if (this.pid > 0) await this.listen();
    for (let j = this.pid + 1; j < this.m; j++) {
      this.phase = `connecting to party ${j} at ${this.host}:${this.ports[j]}`;
      await this.connectWithRetry(j);
    }
    this.phase = 'waiting for lower-index parties to connect';
    this.checkConnected();
    await this.race(connected);
    // MPyC closes its listener once every party is connected: later connections are refused.
    this.server?.close();
  }

  private listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const srv = createServer((s) => this.attach(s, null));
      srv.once('error', (e: NodeJS.ErrnoException) => reject(new MpycSimError(
        `party ${this.pid}: cannot listen on ${this.listenHost}:${this.ports[this.pid]} (${e.code ?? e.message})`)));
      srv.listen({ host: this.listenHost, port: this.ports[this.pid] }, () => {
        srv.removeAllListeners('error');
        srv.on('error', (e) => this.fail(`listener: ${e.message}`));
        this.server = srv;
        resolve();
      });
    });
  }

  /** MPyC: resolve the host, try each address in order, else sleep 100 ms and repeat, forever. */
  private async connectWithRetry(j: number): Promise<void> {
    for (;;) {
      if (this.failure) throw this.failure;
      let addrs: { address: string }[] = [];
      try { addrs = await lookup(this.host, { all: true, verbatim: true }); } catch { /* retried like a refusal */ }
      for (const a of addrs) {
        this.stats.connectAttempts++;
        const s = await tryConnect(a.address, this.ports[j]!);
        if (s) {
          const c = this.attach(s, j);
          const keys: Buffer[] = [];
          if (this.prss) {
            const k = prssKeyCount(this.m, this.t, this.pid, j);
            for (let i = 0; i < k; i++) keys.push(prssKey(this.seed, this.pid, j, i));
          }
          this.write(c, encodeGreeting(this.pid, keys));
          return;
        }
      }
      await new Promise((r) => setTimeout(r, this.retryMs));
    }
  }

  private attach(socket: Socket, peer: number | null): Conn {
    socket.setNoDelay(true); // asyncio sets TCP_NODELAY on every TCP transport
    const c: Conn = { socket, peer, stage: peer === null ? 'pid' : 'header', queue: new ByteQueue(), pendingLabel: null, got: new Set(), gotShutdown: false, closed: false };
    this.conns.push(c);
    if (peer !== null) this.peers[peer] = c;
    socket.on('data', (d: Buffer) => {
      this.stats.bytesReceived += d.length;
      if (this.stats.firstByteMs === null) this.stats.firstByteMs = this.now();
      c.queue.push(d);
      if (!this.failure) this.process(c);
    });
    socket.on('end', () => {
      if (c.peer === null) return; // counted on close
      if (!c.gotShutdown && !this.finished) this.fail(`party ${c.peer} closed the connection before shutdown (while ${this.phase})`);
    });
    socket.on('error', (e: NodeJS.ErrnoException) => {
      if (!this.finished) this.fail(`connection with ${c.peer === null ? 'an unidentified party' : `party ${c.peer}`}: ${e.code ?? e.message}`);
    });
    socket.on('close', () => {
      c.closed = true;
      if (c.peer === null) { this.stats.unidentifiedConnections++; return; }
      if (!c.gotShutdown && !this.finished) this.fail(`connection with party ${c.peer} closed before shutdown (while ${this.phase})`);
      this.checkClosed();
    });
    return c;
  }

  // ---- receiving: MessageExchanger.data_received, with every byte checked ----

  private process(c: Conn): void {
    for (;;) {
      if (this.failure) return;
      if (c.stage === 'pid') {
        const b = c.queue.read(PID_BYTES);
        if (!b) return;
        const peer = b.readUInt16LE(0);
        if (peer >= this.pid) return this.fail(`accepted connection says it is party ${peer}; only parties < ${this.pid} connect to party ${this.pid}`);
        if (this.peers[peer]) return this.fail(`party ${peer} connected twice`);
        c.peer = peer;
        this.peers[peer] = c;
        c.stage = 'keys';
      } else if (c.stage === 'keys') {
        const peer = c.peer!;
        const k = this.prss ? prssKeyCount(this.m, this.t, peer, this.pid) : 0;
        const b = c.queue.read(PRSS_KEY_BYTES * k);
        if (!b) return;
        for (let i = 0; i < k; i++) {
          const want = prssKey(this.seed, peer, this.pid, i);
          const off = diffAt(b.subarray(i * PRSS_KEY_BYTES, (i + 1) * PRSS_KEY_BYTES), want);
          if (off >= 0) return this.fail(`greeting from party ${peer}: PRSS key ${i} byte ${off} differs`);
        }
        c.stage = 'header';
        this.checkConnected();
      } else if (c.stage === 'header') {
        const b = c.queue.read(HEADER_BYTES);
        if (!b) return;
        const h = parseHeader(b)!;
        const l = this.labels.get(h.pc);
        if (!l) return this.fail(`message from party ${c.peer} with unknown pc ${h.pc} (size ${h.payloadSize}): stream corrupted or out of step`);
        if (c.got.has(l.idx)) return this.fail(`party ${c.peer} sent ${describe(l)} twice`);
        const size = l.kind === 'shutdown' ? picklePid(c.peer!).length : l.size;
        if (h.payloadSize !== size) return this.fail(`${describe(l)} from party ${c.peer}: payload size ${h.payloadSize}, expected ${size}`);
        c.pendingLabel = l;
        c.stage = 'payload';
      } else {
        const l = c.pendingLabel!;
        const peer = c.peer!;
        const size = l.kind === 'shutdown' ? picklePid(peer).length : l.size;
        const b = c.queue.read(size);
        if (!b) return;
        const want = l.kind === 'round' ? this.roundBytes(peer, this.pid, l.round)
          : l.kind === 'bulk' ? bulkPayload(this.seed, peer, this.pid, size) : picklePid(peer);
        const off = diffAt(b, want);
        if (off >= 0) return this.fail(`${describe(l)} from party ${peer}: payload byte ${off} is 0x${b[off]!.toString(16)}, expected 0x${want[off]!.toString(16)}`);
        c.got.add(l.idx);
        if (l.kind === 'shutdown') c.gotShutdown = true;
        c.stage = 'header';
        c.pendingLabel = null;
        this.stats.messagesVerified++;
        if (this.stats.firstMessageMs === null) this.stats.firstMessageMs = this.now();
        if (++this.arrivals[l.idx]! === this.m - 1) { const w = this.waiters.get(l.idx); this.waiters.delete(l.idx); w?.(); }
      }
    }
  }

  // ---- shutdown: Runtime.shutdown() ----

  private async shutdown(): Promise<void> {
    if (this.m === 1) return;
    this.phase = 'shutdown synchronisation';
    const l = this.labelList[this.labelList.length - 1]!;
    for (const j of this.others()) this.send(j, l, picklePid(this.pid));
    await this.waitAll(l.idx);
    this.phase = 'closing connections';
    const closed = new Promise<void>((resolve) => { this.closedWaiter = resolve; });
    // Each party closes the connections it opened (to higher indices) and waits until the
    // lower-index parties have closed theirs; the accepting side closes on EOF.
    for (let j = this.pid + 1; j < this.m; j++) this.peers[j]!.socket.end();
    this.checkClosed();
    await this.race(closed);
  }

  // ---- plumbing ----

  private send(j: number, l: Label, payload: Buffer): void {
    const c = this.peers[j]!;
    c.socket.cork();
    this.write(c, encodeHeader(l.pc, payload.length));
    this.write(c, payload);
    c.socket.uncork();
  }

  private write(c: Conn, b: Buffer): void {
    this.stats.bytesSent += b.length;
    c.socket.write(b);
  }

  /**
   * Round payload from `from` to `to`. Precomputed when they fit in PRECOMPUTE_BYTES, so
   * that round latencies measure the network and not the hashing (~4 µs per message).
   */
  private roundBytes(from: number, to: number, r: number): Buffer {
    const cached = this.roundCache?.get(from * this.m + to)?.[r];
    return cached ?? roundPayload(this.seed, from, to, r, this.msgSize);
  }

  private others(): number[] {
    return Array.from({ length: this.m }, (_, k) => k).filter((k) => k !== this.pid);
  }

  private checkConnected(): void {
    const ready = this.others().every((j) => { const c = this.peers[j]; return c !== undefined && c.stage !== 'pid' && c.stage !== 'keys'; });
    if (ready && this.connectedWaiter) { const w = this.connectedWaiter; this.connectedWaiter = null; w(); }
  }

  private checkClosed(): void {
    if (!this.closedWaiter) return;
    if (this.others().every((j) => this.peers[j]!.closed)) { const w = this.closedWaiter; this.closedWaiter = null; w(); }
  }

  private waitAll(idx: number): Promise<void> {
    if (this.arrivals[idx] === this.m - 1) return Promise.resolve();
    return this.race(new Promise<void>((resolve) => this.waiters.set(idx, resolve)));
  }

  private race<T>(p: Promise<T>): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<T>((resolve, reject) => {
      this.pendingReject = reject;
      p.then((v) => { this.pendingReject = null; resolve(v); });
    });
  }

  private fail(msg: string): void {
    if (this.failure) return;
    this.failure = new MpycSimError(`party ${this.pid}: ${msg}`);
    const r = this.pendingReject;
    this.pendingReject = null;
    r?.(this.failure);
  }

  private missing(): string {
    const idx = this.phase.startsWith('round ') ? Number(this.phase.slice(6))
      : this.phase === 'bulk' ? this.rounds : this.phase === 'shutdown synchronisation' ? this.labelList.length - 1 : -1;
    if (idx < 0) {
      const absent = this.others().filter((j) => !this.peers[j] || this.peers[j]!.stage === 'pid' || this.peers[j]!.stage === 'keys');
      return absent.length && this.phase.startsWith('waiting') ? ` (no connection from ${absent.map((j) => `party ${j}`).join(', ')})` : '';
    }
    const absent = this.others().filter((j) => !this.peers[j]?.got.has(idx));
    return absent.length ? ` (nothing yet from ${absent.map((j) => `party ${j}`).join(', ')})` : '';
  }

  private now(): number {
    return performance.now() - this.t0;
  }
}

function describe(l: Label): string {
  return l.kind === 'round' ? `round ${l.round} message` : l.kind === 'bulk' ? 'bulk message' : 'shutdown message';
}

/** Index of the first differing byte, or -1 when equal (lengths are equal by construction). */
function diffAt(a: Uint8Array, b: Uint8Array): number {
  if (Buffer.compare(a, b) === 0) return -1;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return a.length;
}

function tryConnect(host: string, port: number): Promise<Socket | null> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const onErr = (): void => { s.destroy(); resolve(null); };
    s.once('error', onErr);
    s.once('connect', () => { s.removeListener('error', onErr); resolve(s); });
  });
}
