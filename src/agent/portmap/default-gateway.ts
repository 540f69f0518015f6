// The IPv4 default gateway: where NAT-PMP and PCP requests go (RFC 6886 §3, RFC 6887 §8.1:
// the client's default router). Node has no API for it; on Linux the kernel's routing
// table is /proc/net/route (per network namespace). Elsewhere: unknown, and only UPnP-IGD
// (found by multicast) is tried.
import { readFileSync } from 'node:fs';

const RTF_UP = 0x1;
const RTF_GATEWAY = 0x2;

/** The gateway of the first usable default route in /proc/net/route text, or undefined. */
export function parseDefaultGateway(text: string): string | undefined {
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    // Iface Destination Gateway Flags RefCnt Use Metric Mask …, addresses as little-endian hex
    if (f.length < 8 || f[1] !== '00000000' || f[7] !== '00000000') continue;
    const flags = parseInt(f[3]!, 16);
    if ((flags & (RTF_UP | RTF_GATEWAY)) !== (RTF_UP | RTF_GATEWAY) || !/^[0-9A-Fa-f]{8}$/.test(f[2]!)) continue;
    const n = parseInt(f[2]!, 16);
    return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24].join('.');
  }
  return undefined;
}

export function defaultGateway(): string | undefined {
  try { return parseDefaultGateway(readFileSync('/proc/net/route', 'utf8')); } catch { return undefined; }
}
