// The UDP socket a NAT-PMP or PCP client talks to its gateway on: connected to
// gateway:5351, so the kernel drops datagrams from anyone else (a LAN host cannot answer
// for the gateway) and an ICMP "port unreachable" (no such server) fails a request at
// once. One request at a time: a new one ends the one under way (it resolves with no
// answer), so a delete on stop never waits behind a renewal; retransmission doubles the wait (RFC 6886 §3.1: 250 ms
// doubling; we start at 250 ms and stop after a few tries, so a router without the
// protocol costs at most ~2 s before the next protocol is tried).
import { createSocket, type Socket } from 'node:dgram';

/** default tries and first wait: 250 + 500 + 1000 ms */
export const GATEWAY_TRIES = 3;
export const GATEWAY_FIRST_WAIT_MS = 250;

export class GatewaySocket {
  private pending?: { accept: (b: Uint8Array) => boolean; done: (b: Uint8Array | undefined, err?: Error) => void };

  private constructor(private readonly socket: Socket, readonly gateway: string, readonly localAddress: string) {
    socket.on('message', (msg) => {
      const p = this.pending;
      const b = new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength);
      if (p && p.accept(b)) p.done(b);
    });
    socket.on('error', (err) => this.pending?.done(undefined, err));
  }

  static open(gateway: string, port: number): Promise<GatewaySocket> {
    return new Promise((resolve, reject) => {
      const s = createSocket('udp4');
      s.once('error', (err) => { s.close(); reject(err); });
      s.bind(0, () => s.connect(port, gateway, () => {
        s.removeAllListeners('error');
        resolve(new GatewaySocket(s, gateway, s.address().address));
      }));
    });
  }

  /**
   * Sends `request` until an answer that `accept` takes arrives (it returns the first such
   * answer) or the tries run out (undefined). Rejects on a socket error (no server there).
   */
  request(request: Uint8Array, accept: (b: Uint8Array) => boolean, o: { tries?: number; firstWaitMs?: number } = {}): Promise<Uint8Array | undefined> {
    this.pending?.done(undefined);
    const tries = o.tries ?? GATEWAY_TRIES;
    let wait = o.firstWaitMs ?? GATEWAY_FIRST_WAIT_MS;
    return new Promise((resolve, reject) => {
      let sent = 0;
      let timer: NodeJS.Timeout | undefined;
      const send = (): void => {
        if (sent === tries) { finish(undefined); return; }
        sent++;
        this.socket.send(request, (err) => { if (err) finish(undefined, err); });
        timer = setTimeout(send, wait);
        wait *= 2;
      };
      const mine = { accept, done: (b: Uint8Array | undefined, err?: Error): void => finish(b, err) };
      const finish = (b: Uint8Array | undefined, err?: Error): void => {
        if (timer) clearTimeout(timer);
        if (this.pending === mine) this.pending = undefined;
        if (err) reject(err); else resolve(b);
      };
      this.pending = mine;
      send();
    });
  }

  close(): void {
    this.pending?.done(undefined, new Error('closed'));
    try { this.socket.close(); } catch { /* already closed */ }
  }
}
