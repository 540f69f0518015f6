// Several relay processes behind one UDP port and one HTTP port (docs/relay.md, "Using
// every core"). The UDP port, two ways (the primary probes which one the runtime has):
//  - "reuseport" (Node >= 22.12 / 23.1 on Linux): every worker binds its own socket on the
//    port with SO_REUSEPORT; the kernel hashes each source address:port to one of them, so
//    an agent's datagrams always reach the same worker (the one it registered at), no
//    worker wakes for another's datagram, and every socket sends from the same address:port
//    (what a NAT in front of an agent expects to hear from).
//  - "shared" (Node 20: dgram ignores reusePort): Node's cluster hands every worker the same
//    socket; every datagram wakes every worker (no EPOLLEXCLUSIVE), one reads it, and the
//    workers contend on the one socket: it does not scale (measured in docs/relay.md).
// HTTP connections are spread by the cluster either way. Each worker is a full RelayServer;
// the key -> address table is replicated by messages through the primary, so any worker
// forwards any packet. What stays with the worker an agent registered at (its "owner"): the
// agent's control keys (authenticated frames are sealed and opened there), its WebSocket,
// and its expiry.
//
// Messages (structured clone over IPC; `to` = one worker, otherwise every other worker):
import cluster, { type Worker } from 'node:cluster';
import type * as dgram from 'node:dgram';
import { createUdpSocket } from '../common/udp-socket.js';
import type { CookieSecret } from './cookie.js';
import type { HostPort } from './server.js';
import type { RelayCounters } from './metrics.js';

export type ClusterMessage =
  /** an agent registered at worker `from` (or its binding moved there) */
  | { t: 'add'; from: number; key: string; transport: 'udp' | 'ws'; address: string; port: number; place: string; token: [number, number] }
  /** the registration of `key` at `place` ended */
  | { t: 'del'; from: number; key: string; place: string }
  /** the agent's accept set (key ids as text), null = from anyone; `seq`: the owner waits for
   *  every other worker to confirm it ('accepted') before it answers ACCEPT_ACK */
  | { t: 'accept'; from: number; key: string; keys: string[] | null; seq?: number }
  /** primary -> the owner: its 'accept' `seq` went to `n` workers (the connected ones) */
  | { t: 'acceptSent'; to: number; seq: number; n: number }
  /** a worker holds the accept set `seq` of worker `to` */
  | { t: 'accepted'; to: number; seq: number }
  /** these agents of worker `to` sent something through another worker */
  | { t: 'seen'; to: number; keys: string[] }
  /** a RECV frame for a WebSocket agent of worker `to` */
  | { t: 'fwd'; to: number; key: string; frame: Uint8Array }
  /** agent `key` of worker `to` sent to `missing`, which is not registered: seal PEER_GONE */
  | { t: 'gone'; to: number; key: string; missing: Uint8Array }
  /** an authenticated agent -> relay frame (ACCEPT_FROM, LEAVE) for an agent of worker `to`, which holds its keys */
  | { t: 'ctl'; to: number; key: string; frame: Uint8Array }
  /** worker -> primary: its counters; primary -> workers: the sums */
  | { t: 'counters'; from: number; c: CounterSnapshot }
  | { t: 'totals'; c: CounterSnapshot };

export type CounterSnapshot = Pick<RelayCounters, 'forwardedPackets' | 'forwardedBytes' | 'stunRequests' | 'stunDrops'
  | 'registrations' | 'handlerErrors' | 'keyConflicts' | 'leaves' | 'drops' | 'regFailures' | 'httpRefused'>;

/** What a worker's RelayServer needs from the cluster. */
export interface ClusterLink {
  workerId: number;
  workers: number;
  /** "reuseport": bind an own UDP socket on this port with SO_REUSEPORT; undefined: the cluster's shared socket */
  udpReusePort: number | undefined;
  /** tell the primary this worker's sockets are bound (it then lets go of the port it held) */
  bound(): void;
  /** shared by every worker so a cookie issued by one verifies at another */
  cookieSecret: CookieSecret;
  send(m: ClusterMessage): void;
  onMessage(handler: (m: ClusterMessage) => void): void;
}

export function snapshot(c: RelayCounters): CounterSnapshot {
  return {
    forwardedPackets: c.forwardedPackets, forwardedBytes: c.forwardedBytes, stunRequests: c.stunRequests,
    stunDrops: c.stunDrops, registrations: c.registrations, handlerErrors: c.handlerErrors, keyConflicts: c.keyConflicts,
    leaves: c.leaves, drops: { ...c.drops }, regFailures: { ...c.regFailures }, httpRefused: { ...c.httpRefused },
  };
}

// ---------------------------------------------------------------- processes

type Setup = { t: 'setup'; workerId: number; workers: number; secret: Uint8Array; epochMs: number; udpReusePort: number | undefined };
/** worker -> primary: listening for messages now (messages sent before are lost) */
type Ready = { t: 'ready' };
/** worker -> primary: its sockets are bound */
type Bound = { t: 'bound' };

function bindReusePort(at: HostPort, buffers?: number): Promise<dgram.Socket> {
  // `reusePort` is Node >= 22.12 (absent from Node 20's types and ignored by its dgram)
  const opts: dgram.SocketOptions & { reusePort?: boolean } = {
    type: at.host.includes(':') ? 'udp6' : 'udp4', reusePort: true, ...(buffers ? { recvBufferSize: buffers, sendBufferSize: buffers } : {}),
  };
  const s = createUdpSocket(opts);
  return new Promise((resolve, reject) => {
    s.once('error', (e) => { s.close(); reject(e); });
    s.bind({ port: at.port, address: at.host, exclusive: true }, () => resolve(s));
  });
}

/**
 * Can the workers each have their own socket on the relay's UDP port? Binds the port with
 * SO_REUSEPORT (port 0: an ephemeral one) and a second socket beside it; both bind only
 * where the runtime sets SO_REUSEPORT (Node 20 ignores the option: EADDRINUSE). Resolves
 * with the first socket, which holds the port until the workers have bound theirs (the
 * caller closes it), or undefined: use the cluster's shared socket.
 */
export async function reusePortHolder(at: HostPort): Promise<dgram.Socket | undefined> {
  let holder: dgram.Socket;
  try { holder = await bindReusePort(at); } catch { return undefined; } // port in use: the workers' bind reports it
  try {
    (await bindReusePort({ host: at.host, port: holder.address().port })).close();
    return holder;
  } catch {
    holder.close();
    return undefined;
  }
}

/** A worker's own socket on the relay's UDP port (ClusterLink.udpReusePort). */
export function reusePortSocket(host: string, port: number, buffers: number): Promise<dgram.Socket> {
  return bindReusePort({ host, port }, buffers);
}

/**
 * Primary: fork `n` workers running this same program (they see cluster.isWorker), route
 * their messages, sum their counters every second, pass SIGTERM/SIGINT/SIGHUP on, and exit
 * when they all have (with the first non-zero exit code, if any).
 */
export async function runPrimary(n: number, udp: HostPort, cookieSecret: CookieSecret, log: (msg: string, o?: object) => void): Promise<void> {
  cluster.setupPrimary({ serialization: 'advanced' });
  // a datagram the kernel hashes to the holder is lost: it goes once every worker has bound
  // (before that nobody is registered)
  const holder = await reusePortHolder(udp);
  const udpReusePort = holder?.address().port;
  const workers: Worker[] = [];
  const counters = new Map<number, CounterSnapshot>();
  let exitCode = 0, alive = n;
  const settled = new Set<number>(); // workers bound or gone
  const settle = (i: number): void => {
    if (settled.has(i)) return;
    settled.add(i);
    if (settled.size === n) holder?.close();
  };
  // a worker takes SIGHUP (reload) once its handler is installed, which its 'ready' says;
  // before that the signal's default action would end it: it gets the signal on 'ready'
  const ready = new Set<number>();
  const hupPending = new Set<number>();
  let totals: NodeJS.Timeout | undefined;
  // installed before the first fork: a signal in the workers' start-up reaches them too
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.on(sig, () => {
      // the workers are stopping: no more sums to send them
      if (sig !== 'SIGHUP') clearInterval(totals);
      for (const [i, w] of workers.entries()) {
        if (sig === 'SIGHUP' && !ready.has(i)) hupPending.add(i);
        else w.process.kill(sig);
      }
    });
  }
  for (let i = 0; i < n; i++) {
    const w = cluster.fork();
    workers.push(w);
    w.on('message', (m: ClusterMessage | Ready | Bound) => {
      if (m.t === 'ready') {
        w.send({ t: 'setup', workerId: i, workers: n, secret: cookieSecret.secret, epochMs: cookieSecret.epochMs, udpReusePort } satisfies Setup);
        ready.add(i);
        if (hupPending.delete(i)) w.process.kill('SIGHUP');
        return;
      }
      if (m.t === 'bound') { settle(i); return; }
      if (m.t === 'counters') { counters.set(m.from, m.c); return; }
      if ('to' in m) { workers[m.to]?.send(m); return; }
      let sent = 0;
      for (const [j, o] of workers.entries()) if (j !== (m as { from?: number }).from && o.isConnected()) { o.send(m); sent++; }
      // the owner counts confirmations from as many workers as hold the set now
      if (m.t === 'accept' && m.seq !== undefined) w.send({ t: 'acceptSent', to: i, seq: m.seq, n: sent } satisfies ClusterMessage);
    });
    // a send to a worker whose channel is closing (it is exiting: SIGTERM, a crash) fails
    // with EPIPE as an 'error' event; unhandled, it would end the primary with the workers
    w.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE' && err.code !== 'ERR_IPC_CHANNEL_CLOSED') log('relay worker IPC error', { worker: i, err: err.message });
    });
    w.on('exit', (code, signal) => {
      settle(i); // one that failed to bind lets go too
      if (code !== 0 && !exitCode) exitCode = code ?? 1;
      if (code !== 0) log('relay worker exited', { worker: i, code, signal });
      if (--alive === 0) process.exit(exitCode);
    });
  }
  totals = setInterval(() => {
    const sum = { t: 'totals' as const, c: sumSnapshots(counters.values()) };
    for (const w of workers) if (w.isConnected()) w.send(sum);
  }, 1000);
  totals.unref();
}

function sumSnapshots(parts: Iterable<CounterSnapshot>): CounterSnapshot {
  const list = [...parts];
  const add = (k: 'drops' | 'regFailures' | 'httpRefused'): Record<string, number> => {
    const o: Record<string, number> = {};
    for (const p of list) for (const [x, v] of Object.entries(p[k])) o[x] = (o[x] ?? 0) + v;
    return o;
  };
  const num = (k: 'forwardedPackets' | 'forwardedBytes' | 'stunRequests' | 'stunDrops' | 'registrations' | 'handlerErrors' | 'keyConflicts' | 'leaves'): number =>
    list.reduce((s, p) => s + p[k], 0);
  return {
    forwardedPackets: num('forwardedPackets'), forwardedBytes: num('forwardedBytes'), stunRequests: num('stunRequests'),
    stunDrops: num('stunDrops'), registrations: num('registrations'), handlerErrors: num('handlerErrors'), keyConflicts: num('keyConflicts'),
    leaves: num('leaves'),
    drops: add('drops') as CounterSnapshot['drops'], regFailures: add('regFailures') as CounterSnapshot['regFailures'],
    httpRefused: add('httpRefused') as CounterSnapshot['httpRefused'],
  };
}

/** Worker: wait for the primary's setup, then the link a RelayServer uses. */
export function workerLink(): Promise<ClusterLink> {
  return new Promise((resolve) => {
    const handlers: Array<(m: ClusterMessage) => void> = [];
    process.on('message', (m: ClusterMessage | Setup) => {
      if (m.t === 'setup') {
        resolve({
          workerId: m.workerId, workers: m.workers, cookieSecret: { secret: m.secret, epochMs: m.epochMs }, udpReusePort: m.udpReusePort,
          send: (x) => { if (process.connected) process.send!(x); },
          bound: () => { if (process.connected) process.send!({ t: 'bound' } satisfies Bound); },
          onMessage: (h) => { handlers.push(h); },
        });
        return;
      }
      for (const h of handlers) h(m);
    });
    process.send!({ t: 'ready' } satisfies Ready);
  });
}
