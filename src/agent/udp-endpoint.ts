// The agent's UDP endpoint: one socket per address family (IPv4, and IPv6 with ipv6Only so
// the two never see each other's traffic), one first-byte demultiplexer for both. STUN,
// relay frames and direct peer packets share a socket so that the reflexive address STUN
// reports is the one peers punch to (docs/ARCHITECTURE.md):
//
//   first byte 0x00–0x03  STUN (looksLikeStun: magic cookie, length ≡ 0 mod 4)
//              0x10–0x1F  agent↔agent session message          (src/session)
//              0x20–0x3F  agent↔relay frame (isRelayFrame)     (src/relay)
//              otherwise  dropped, counted as unknown_type
import type { Socket } from 'node:dgram';
import type { Logger } from 'pino';
import { looksLikeStun } from '../stun/codec.js';
import { isRelayFrame } from '../relay/wire.js';
import { familyOf, type Family } from './addresses.js';
import { createUdpSocket } from '../common/udp-socket.js';

/**
 * Receive and send buffer requested for each UDP socket: a bulk transfer's window of
 * datagrams in flight must fit in the receiver's buffer or the kernel drops them
 * (RcvbufErrors). 4 MiB holds what 1 Gbit/s keeps in flight over a 30 ms RTT; the kernel
 * grants at most net.core.rmem_max / wmem_max (and counts twice the bytes, for overhead).
 */
export const UDP_SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;

const STUN_FIRST_BYTE_MAX = 0x03;
const SESSION_FIRST_BYTE_MIN = 0x10;
const SESSION_FIRST_BYTE_MAX = 0x1f;

/** `via`: the birthday socket it arrived on (absent: the main socket of its family) */
export interface UdpSource { address: string; port: number; family: Family; via?: number }

export interface UdpHandlers {
  stun(datagram: Uint8Array, from: UdpSource): void;
  session(datagram: Uint8Array, from: UdpSource): void;
  relay(datagram: Uint8Array, from: UdpSource): void;
  /** a datagram none of the ranges claims, or a malformed STUN one */
  drop(reason: 'unknown_type' | 'stun_malformed'): void;
}

export interface UdpBind { host: string; port: number }

export function classifyDatagram(b: Uint8Array): 'stun' | 'session' | 'relay' | 'unknown' {
  const first = b[0];
  if (first === undefined) return 'unknown';
  if (first <= STUN_FIRST_BYTE_MAX) return 'stun';
  if (first >= SESSION_FIRST_BYTE_MIN && first <= SESSION_FIRST_BYTE_MAX) return 'session';
  if (isRelayFrame(b)) return 'relay';
  return 'unknown';
}

/** birthday sockets open at once (birthday.ts opens 256 per hard-side attempt; a few peers at a time) */
export const MAX_AUX_SOCKETS = 1024;

export class UdpEndpoint {
  /** extra IPv4 sockets (birthday probing): session messages only, sent and received with their id */
  private readonly aux = new Map<number, Socket>();
  private nextAuxId = 1;
  private closed = false;

  private constructor(
    private readonly sockets: { 4?: Socket; 6?: Socket },
    /** bound address and port per family */
    readonly bound: { v4?: UdpBind; v6?: UdpBind },
    private readonly handlers: UdpHandlers,
  ) {}

  /**
   * Binds the IPv4 socket at `v4` (if given) and the IPv6 one at `v6` (if given; on the
   * IPv4 socket's port when `v6.port` is 0 and that port is free, so both families share a
   * port number). An IPv6 socket that cannot be bound (no IPv6 on this host) is left out
   * with a log line; an IPv4 one that cannot be bound is an error.
   */
  static async open(opts: { v4?: UdpBind; v6?: UdpBind; handlers: UdpHandlers; logger: Logger }): Promise<UdpEndpoint> {
    const sockets: { 4?: Socket; 6?: Socket } = {};
    const bound: { v4?: UdpBind; v6?: UdpBind } = {};
    const onMessage = (msg: Buffer, rinfo: { address: string; port: number }, family: Family): void => {
      const b = new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength);
      const from: UdpSource = { address: rinfo.address, port: rinfo.port, family };
      switch (classifyDatagram(b)) {
        case 'stun':
          if (looksLikeStun(b)) opts.handlers.stun(b, from); else opts.handlers.drop('stun_malformed');
          break;
        case 'session': opts.handlers.session(b, from); break;
        case 'relay': opts.handlers.relay(b, from); break;
        case 'unknown': opts.handlers.drop('unknown_type'); break;
      }
    };
    try {
      if (opts.v4) {
        const s = await bind(4, opts.v4);
        sockets[4] = s;
        bound.v4 = { host: opts.v4.host, port: s.address().port };
      }
      if (opts.v6) {
        const port = opts.v6.port || bound.v4?.port || 0;
        const s = await bind(6, { host: opts.v6.host, port }).catch((err: Error) =>
          port !== opts.v6!.port ? bind(6, opts.v6!) : Promise.reject(err),
        ).catch((err: Error) => {
          if (!opts.v4) throw err;
          opts.logger.info({ err: err.message }, 'no IPv6 UDP socket; IPv4 only');
          return undefined;
        });
        if (s) {
          sockets[6] = s;
          bound.v6 = { host: opts.v6.host, port: s.address().port };
        }
      }
    } catch (err) {
      for (const s of Object.values(sockets)) s.close();
      throw err;
    }
    for (const fam of [4, 6] as const) {
      const s = sockets[fam];
      if (!s) continue;
      s.on('error', (err) => opts.logger.warn({ err: err.message, family: fam }, 'UDP socket error'));
      s.on('message', (msg, rinfo) => onMessage(msg, rinfo, fam));
    }
    return new UdpEndpoint(sockets, bound, opts.handlers);
  }

  /**
   * The smallest receive buffer the kernel granted our sockets, in the bytes it counts
   * (datagrams plus their overhead: about twice the payload of small datagrams).
   */
  get receiveBufferBytes(): number {
    return Math.min(...Object.values(this.sockets).map((s) => s.getRecvBufferSize()));
  }

  /**
   * Opens `count` extra IPv4 sockets on ephemeral ports (beside the main socket's address)
   * and returns their ids; fewer when MAX_AUX_SOCKETS would be passed or binding fails.
   * Only session messages are taken from them (anything else is dropped as unknown_type).
   */
  async openAux(count: number): Promise<number[]> {
    const host = this.bound.v4?.host;
    if (host === undefined) return [];
    const n = Math.max(0, Math.min(count, MAX_AUX_SOCKETS - this.aux.size));
    const opened = await Promise.all(Array.from({ length: n }, () => bind(4, { host, port: 0 }).catch(() => undefined)));
    const ids: number[] = [];
    for (const s of opened) {
      if (!s) continue;
      if (this.closed) { s.close(); continue; } // the endpoint closed while these were binding
      const id = this.nextAuxId++;
      this.aux.set(id, s);
      ids.push(id);
      s.on('error', () => undefined); // a send to a closed port (ICMP) is the peer's NAT saying no
      s.on('message', (msg, rinfo) => {
        const b = new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength);
        if (classifyDatagram(b) === 'session') this.handlers.session(b, { address: rinfo.address, port: rinfo.port, family: 4, via: id });
        else this.handlers.drop('unknown_type');
      });
    }
    return ids;
  }

  closeAux(ids: readonly number[]): void {
    for (const id of ids) {
      const s = this.aux.get(id);
      if (!s) continue;
      this.aux.delete(id);
      try { s.close(); } catch { /* already closed */ }
    }
  }

  get auxCount(): number { return this.aux.size; }

  /** Whether there is a socket that can reach this address family. */
  canReach(address: string): boolean {
    return this.sockets[familyOf(address)] !== undefined;
  }

  /**
   * Hands one datagram to the kernel. Returns false when it was not sent: no socket of
   * that family, or the socket refused it synchronously (closed, bad address).
   */
  send(packet: Uint8Array, address: string, port: number, via?: number): boolean {
    const s = via === undefined ? this.sockets[familyOf(address)] : this.aux.get(via);
    if (!s) return false;
    try {
      s.send(packet, port, address);
      return true;
    } catch {
      return false;
    }
  }

  close(): Promise<void> {
    this.closed = true;
    this.closeAux([...this.aux.keys()]);
    const all = Object.values(this.sockets);
    return Promise.all(all.map((s) => new Promise<void>((r) => s.close(() => r())))).then(() => undefined);
  }
}

function bind(family: Family, at: UdpBind): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createUdpSocket({
      type: family === 4 ? 'udp4' : 'udp6', ipv6Only: family === 6,
      recvBufferSize: UDP_SOCKET_BUFFER_BYTES, sendBufferSize: UDP_SOCKET_BUFFER_BYTES,
    });
    s.once('error', (err) => {
      s.close();
      reject(new Error(`cannot bind UDP ${family === 6 ? `[${at.host}]` : at.host}:${at.port}: ${err.message}`));
    });
    s.bind(at.port, at.host, () => {
      s.removeAllListeners('error');
      resolve(s);
    });
  });
}
