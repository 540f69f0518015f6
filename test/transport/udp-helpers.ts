// Real-socket helpers for the transport tests: a userspace lossy/reordering UDP proxy and a
// transport endpoint (Connection + ConnectionDriver) on a loopback UDP socket, optionally
// through the Noise session layer (SessionManager). Loopback only; everything is closed by
// close() so a test never leaves a socket or timer behind.
import * as dgram from 'node:dgram';
import { Connection } from '../../src/transport/connection.js';
import { ConnectionDriver } from '../../src/transport/node.js';
import { SessionManager } from '../../src/session/index.js';
import { PeerKey } from '../../src/common/peer-key.js';
import type { KeyPair } from '../../src/noise/index.js';
import { prng } from '../../src/sim/network.js';

export interface ProxyOptions {
  /** independent loss probability per datagram, each direction */
  loss: number;
  /** probability that a datagram is held back (delivered after later ones) */
  reorder: number;
  /** how long a held-back datagram waits, ms (uniform in [1, reorderMaxMs]) */
  reorderMaxMs: number;
  seed: number;
}

export interface ProxyStats {
  forwarded: number;
  dropped: number;
  reordered: number;
}

async function bindLoopback(): Promise<dgram.Socket> {
  const s = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => {
      s.off('error', reject);
      resolve();
    });
  });
  return s;
}

/**
 * A → proxy.portA → B and B → proxy.portB → A, once setClients() told the proxy where A and
 * B listen. Impairments are applied per datagram from a seeded PRNG.
 */
export class LossyProxy {
  stats: ProxyStats = { forwarded: 0, dropped: 0, reordered: 0 };
  private timers = new Set<NodeJS.Timeout>();
  private portOfA = 0;
  private portOfB = 0;
  private constructor(
    private readonly sa: dgram.Socket,
    private readonly sb: dgram.Socket,
    private readonly opts: ProxyOptions,
    private readonly rand: () => number,
  ) {
    sa.on('message', (m) => {
      if (this.portOfB) this.forward(m, this.sb, this.portOfB);
    });
    sb.on('message', (m) => {
      if (this.portOfA) this.forward(m, this.sa, this.portOfA);
    });
  }

  static async create(opts: ProxyOptions): Promise<LossyProxy> {
    return new LossyProxy(await bindLoopback(), await bindLoopback(), opts, prng(opts.seed));
  }

  get portA(): number {
    return this.sa.address().port;
  }
  get portB(): number {
    return this.sb.address().port;
  }

  setClients(portOfA: number, portOfB: number): void {
    this.portOfA = portOfA;
    this.portOfB = portOfB;
  }

  private forward(m: Buffer, out: dgram.Socket, port: number): void {
    if (this.rand() < this.opts.loss) {
      this.stats.dropped++;
      return;
    }
    this.stats.forwarded++;
    if (this.rand() < this.opts.reorder) {
      this.stats.reordered++;
      const t = setTimeout(() => {
        this.timers.delete(t);
        out.send(m, port, '127.0.0.1');
      }, 1 + Math.floor(this.rand() * this.opts.reorderMaxMs));
      this.timers.add(t);
      return;
    }
    out.send(m, port, '127.0.0.1');
  }

  close(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.sa.close();
    this.sb.close();
  }
}

export interface UdpEndpoint {
  conn: Connection;
  driver: ConnectionDriver;
  session: SessionManager<null> | null;
  socket: dgram.Socket;
  /** datagrams the session layer dropped, by reason */
  sessionDrops: Map<string, number>;
  close(): void;
}

/**
 * One transport endpoint on its own loopback socket, sending to `remotePort`. With `noise`,
 * every transport datagram is a plaintext of the session layer (encrypted to `peer`).
 */
export async function udpEndpoint(opts: {
  side: 0 | 1;
  remotePort: number;
  noise?: { staticKey: KeyPair; peer: Uint8Array };
}): Promise<UdpEndpoint> {
  const socket = await bindLoopback();
  const sendRaw = (b: Uint8Array) => socket.send(b, opts.remotePort, '127.0.0.1');
  const conn = new Connection({ side: opts.side });
  const sessionDrops = new Map<string, number>();
  let session: SessionManager<null> | null = null;
  let driver: ConnectionDriver;
  let sessionTimer: NodeJS.Timeout | null = null;
  const armSession = () => {
    if (!session) return;
    if (sessionTimer) clearTimeout(sessionTimer);
    const d = session.nextDeadline();
    if (d === Infinity) return;
    sessionTimer = setTimeout(() => {
      sessionTimer = null;
      session!.tick();
      armSession();
    }, Math.max(0, d - performance.now()));
    sessionTimer.unref();
  };
  if (opts.noise) {
    const peer = PeerKey.fromBytes(opts.noise.peer);
    session = new SessionManager<null>({
      staticKey: opts.noise.staticKey,
      peers: [peer],
      transmit: (_p, packet) => sendRaw(packet),
      deliver: (_p, plaintext) => driver.receive(plaintext),
    });
    const s = session;
    driver = new ConnectionDriver(conn, (pkt) => {
      s.send(peer, pkt);
      armSession();
    });
    socket.on('message', (m) => {
      const r = s.receive(new Uint8Array(m.buffer, m.byteOffset, m.length), null);
      if (r.kind === 'dropped') sessionDrops.set(r.reason, (sessionDrops.get(r.reason) ?? 0) + 1);
      armSession();
    });
  } else {
    driver = new ConnectionDriver(conn, sendRaw);
    socket.on('message', (m) => driver.receive(new Uint8Array(m.buffer, m.byteOffset, m.length)));
  }
  return {
    conn,
    driver,
    session,
    socket,
    sessionDrops,
    close() {
      driver.stop();
      if (sessionTimer) clearTimeout(sessionTimer);
      session?.close();
      socket.close();
    },
  };
}
