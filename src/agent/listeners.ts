// MPyC's port layout on loopback: party i's agent listens at localBase+j for every j ≠ i
// (MPyC i connects there to reach party j), plus the generic forwards. Each accepted
// connection is handed to the agent core as a stream to the right peer.
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { GenericForward, StreamTarget } from './types.js';

export interface ListenerOptions {
  ownIndex: number;
  parties: number;
  localBase: number;
  forwards: GenericForward[];
  listenHosts: string[];
  logger: Logger;
  onConnection: (peerIndex: number, target: StreamTarget, socket: Socket) => void;
}

export class PortLayoutListeners {
  private readonly servers: Server[] = [];
  /** accepted connections still open: stop() destroys them, or server.close() would wait for them */
  private readonly accepted = new Set<Socket>();
  constructor(private readonly o: ListenerOptions) {}

  /** Fails with a clear error if a port is taken on 127.0.0.1; ::1 is optional (IPv6 may be off). */
  async start(): Promise<void> {
    const plan: { port: number; peer: number; target: StreamTarget }[] = [];
    for (let j = 0; j < this.o.parties; j++) {
      if (j !== this.o.ownIndex) plan.push({ port: this.o.localBase + j, peer: j, target: { kind: 'mpyc', party: j } });
    }
    for (const f of this.o.forwards) plan.push({ port: f.localPort, peer: f.peerIndex, target: { kind: 'port', port: f.remotePort } });
    try {
      for (const item of plan) {
        for (const host of this.o.listenHosts) {
          const server = createServer({ noDelay: true, allowHalfOpen: true }, (sock) => {
            this.accepted.add(sock);
            sock.once('close', () => this.accepted.delete(sock));
            this.o.onConnection(item.peer, item.target, sock);
          });
          try {
            await listen(server, item.port, host);
            this.servers.push(server);
          } catch (err) {
            const e = err as NodeJS.ErrnoException;
            if (host === '::1' && (e.code === 'EADDRNOTAVAIL' || e.code === 'EAFNOSUPPORT')) {
              this.o.logger.debug({ port: item.port }, 'no IPv6 loopback; listening on 127.0.0.1 only');
              continue;
            }
            const why = e.code === 'EADDRINUSE' ? 'is already in use (is another agent or MPyC party running with this index on this machine?)' : e.message;
            throw new Error(`cannot listen on ${host.includes(':') ? `[${host}]` : host}:${item.port} for party ${item.peer}: port ${why}`);
          }
        }
      }
    } catch (err) {
      await this.stop();
      throw err;
    }
    this.o.logger.info({ ports: plan.map((p) => `${p.port}→party ${p.peer}${p.target.kind === 'port' ? `:${p.target.port}` : ''}`) }, 'listening on loopback');
  }

  /**
   * Stops accepting at once; resolves when every server has closed, which is when every
   * accepted connection has closed: destroyConnections() ends those that are left (a
   * half-closed one in CLOSE-WAIT would otherwise keep its server open forever).
   */
  async stop(): Promise<void> {
    await Promise.all(this.servers.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
  }

  destroyConnections(): void {
    for (const s of this.accepted) s.destroy();
  }
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, exclusive: true }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
