// The data path's UDP sockets (the agent's endpoint, the relay's port and its workers') are
// created here, with an address lookup that answers IP literals in the same call. dgram
// resolves every destination before it sends, and Node's resolver answers even an IP
// literal on the next tick, so each send would leave after the current callback instead of
// during it, through one more tick and its closure.
// The agent sends only to addresses (a relay's host name is resolved once, by the relay
// set) and the relay only to the source addresses of its agents; anything else still goes
// to the resolver.
import { createSocket, type Socket, type SocketOptions } from 'node:dgram';
import { lookup as dnsLookup, type LookupOneOptions } from 'node:dns';
import { isIP } from 'node:net';

export function literalFirstLookup(
  host: string, options: LookupOneOptions | number,
  callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void {
  const family = isIP(host);
  if (family !== 0) callback(null, host, family);
  else dnsLookup(host, typeof options === 'number' ? { family: options } : options, callback);
}

/** dgram.createSocket with literalFirstLookup (a `lookup` in `options` is replaced) */
export function createUdpSocket(options: SocketOptions): Socket {
  return createSocket({ ...options, lookup: literalFirstLookup });
}
