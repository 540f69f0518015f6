// The largest transport packet each kind of route could carry: the bound the agent gives
// the transport's DPLPMTUD (RFC 8899), which starts every path at the 1200-byte base and
// only uses a larger size once a probe of it was acknowledged. A datagram to a peer is
//   | session header 16 | inner type 1 | transport packet | tag 16 |   (+ the 41-byte SEND header via a relay)
import { familyOf } from './addresses.js';
import { INNER_HEADROOM } from './inner.js';
import { TRANSPORT_OVERHEAD_LEN } from '../session/index.js';
import { DEFAULT_MAX_PAYLOAD, SEND_HEADER_SIZE } from '../relay/wire.js';

/** what the agent adds around a transport packet inside one peer datagram */
const AGENT_OVERHEAD = INNER_HEADROOM + TRANSPORT_OVERHEAD_LEN;
/** the largest UDP payload: 65535 less the IPv4 (20) and UDP (8) headers; IPv6's length field excludes its header */
const MAX_UDP_PAYLOAD = { 4: 65_535 - 20 - 8, 6: 65_535 - 8 } as const;
/** Ethernet's MTU less the IP and UDP headers: the usual ceiling of a LAN or Internet path */
const ETHERNET_UDP_PAYLOAD = { 4: 1500 - 20 - 8, 6: 1500 - 40 - 8 } as const;

function isLoopback(address: string): boolean {
  return familyOf(address) === 4 ? address.startsWith('127.') : address === '::1';
}

/**
 * The bound for a direct path to `address`: the loopback interface carries 64 KiB
 * datagrams (MTU 65536), so the agents of one host move bulk in ~50× fewer packets; any
 * other path gets Ethernet's size, which probes confirm or refute.
 */
export function directPathMaxPacket(address: string): number {
  const family = familyOf(address);
  return (isLoopback(address) ? MAX_UDP_PAYLOAD[family] : ETHERNET_UDP_PAYLOAD[family]) - AGENT_OVERHEAD;
}

/**
 * The bound for a path through the relay at `relayAddress` (an IP address; undefined when
 * the agent does not know it, e.g. a WebSocket relay whose host did not resolve): sized like
 * a direct path to the relay, with the SEND header inside the datagram, and never above what
 * a relay forwards in one SEND by default. So a relay on this host carries 64 KiB packets, any
 * other Ethernet's size. Only probes answered through the relay (the transport's DPLPMTUD)
 * tell what the whole path carries: the relay → peer leg, or a relay started with a smaller
 * --max-payload (it drops larger frames as `oversized`), keeps the size below.
 */
export function relayPathMaxPacket(relayAddress: string | undefined): number {
  if (relayAddress === undefined) return ETHERNET_UDP_PAYLOAD[4] - SEND_HEADER_SIZE - AGENT_OVERHEAD;
  const family = familyOf(relayAddress);
  const datagram = isLoopback(relayAddress) ? MAX_UDP_PAYLOAD[family] : ETHERNET_UDP_PAYLOAD[family];
  return Math.min(datagram - SEND_HEADER_SIZE, DEFAULT_MAX_PAYLOAD) - AGENT_OVERHEAD;
}
