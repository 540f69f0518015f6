// Views of AgentStatus for `mpyc-agent status`: the human table, and the --json object with
// its measurements rounded (see roundStatus).
//
//   party 1 of 4  key jR5NH58m…  up 2m05s  run: python demo.py -M4 -I 1
//   relay  sLtEnRnF…@relay.example.org:3478/8080  udp  registered
//   relay  Xk3a9mQ2…@relay2.example.org:3478      -    NOT registered: no registration answer over UDP 198.51.100.9:3478 for 12 s
//   addresses  reflexive 203.0.113.7:41641, [2001:db8::7]:41641  local 192.168.1.20  udp port 41641, IPv6 41641
//   nat  mapping IPv4 endpoint-independent, IPv6 endpoint-independent  port mapping pcp 203.0.113.7:41641, lease 10m00s
//
//   PEER     STATE   LIVENESS         PATH                                             FOUND BY          RTT     SENT     RECEIVED  HANDSHAKE  STREAMS  LAST ERROR
//   0 alice  direct  connected 5m12s  direct 198.51.100.4:41641 (IPv4, STUN)           STUN              1.2 ms  1.5 MiB  2.0 MiB   45s        1        -
//   2 carol  direct  connected 1m15s  direct 198.51.100.9:61234 (IPv4, observed)       birthday probing  9.8 ms  20 KiB   31 KiB    1m02s      1        -
//   3 dave   relay   offline 20s      relay udp sLtEnRnF…@relay.example.org:3478/8080  -                 -       0 B      10 B      -          0        -
//
//   PEER     NAT (AS THE PEER REPORTS IT)  BIRTHDAY PROBING
//   0 alice  IPv4 endpoint-independent     -
//   2 carol  IPv4 endpoint-dependent       1 attempt, 612 probes sent, 1 path found
//
// Fields an older agent does not send (relays, liveness, family, source, mechanism,
// mapping, udpPort6) are left out; the second table only lists peers with something to say.
import type { AgentStatus, NatMapping, PathInfo, PathMechanism, PathSource, PeerStatus, RelayStatus } from './types.js';
import { printable } from '../common/cli.js';

export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '-';
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[u]}`;
}

export function formatDuration(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms) || ms < 0) return '-';
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d${String(h % 24).padStart(2, '0')}h`;
}

export function formatRtt(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms) || ms < 0) return '-';
  if (ms < 1) return `${Math.round(ms * 1000)} µs`;
  return ms < 100 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`;
}

/** how a direct address was found, for people */
const SOURCE_TEXT: Record<PathSource, string> = {
  interface: 'interface', stun: 'STUN', portmap: 'port mapping', observed: 'observed', other: 'other',
};

/** `direct 198.51.100.4:41641 (LAN, IPv4, STUN)` or `relay udp KEY…@host:port/http` */
export function formatPath(p: PathInfo | null): string {
  if (!p) return '-';
  if (p.kind === 'direct') {
    const details = [p.lan ? 'LAN' : '', p.family ? `IPv${p.family}` : '', p.source ? SOURCE_TEXT[p.source] ?? printable(p.source) : ''].filter(Boolean);
    return `direct ${p.address}${details.length ? ` (${details.join(', ')})` : ''}`;
  }
  return `relay ${p.transport}${p.relay ? ` ${shortRelay(p.relay)}` : ''}`;
}

/** which mechanism found a direct path, for people (the issue's names: LAN, STUN, IPv6, port mapping, birthday) */
const MECHANISM_TEXT: Record<PathMechanism, string> = {
  lan: 'LAN', stun: 'STUN', ipv6: 'IPv6', 'port-mapping': 'port mapping', birthday: 'birthday probing',
};

/** `LAN`, `STUN`, `IPv6`, `port mapping`, `birthday probing`; `-` for a relayed path or an agent that does not say */
export function formatMechanism(p: PathInfo | null): string {
  if (p?.kind !== 'direct' || !p.mechanism) return '-';
  return MECHANISM_TEXT[p.mechanism] ?? printable(p.mechanism);
}

const MAPPING_TEXT: Record<NatMapping['v4'], string> = { independent: 'endpoint-independent', dependent: 'endpoint-dependent', unknown: 'unknown' };

function mappingText(v: string): string {
  return MAPPING_TEXT[v as NatMapping['v4']] ?? printable(v);
}

/** `IPv4 endpoint-independent, IPv6 unknown` (both families, as this agent knows its own NAT) */
export function formatMapping(m: NatMapping): string {
  return `IPv4 ${mappingText(m.v4)}, IPv6 ${mappingText(m.v6)}`;
}

/** A peer's report: only the families it knows (`-` when it knows none) */
function peerMappingText(m: NatMapping | undefined): string {
  const known = m ? ([['IPv4', m.v4], ['IPv6', m.v6]] as const).filter(([, v]) => v !== 'unknown') : [];
  return known.length ? known.map(([f, v]) => `${f} ${mappingText(v)}`).join(', ') : '-';
}

/** `pcp 203.0.113.7:41641, lease 10m00s` (the lease the router granted; renewed at half of it), or `none` */
export function formatPortMapping(pm: AgentStatus['portMapping']): string {
  if (!pm) return 'none';
  const lease = pm.lifetimeSec === 0 ? 'permanent' : `lease ${formatDuration(pm.lifetimeSec * 1000)}`;
  return `${printable(pm.protocol)} ${printable(pm.external)}, ${lease}`;
}

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** `2 attempts (1 under way), 512 probes sent, 1 path found`, or `-` before any attempt */
export function formatBirthday(b: PeerStatus['birthday']): string {
  if (!b) return '-';
  return `${plural(b.attempts, 'attempt', 'attempts')}${b.running ? ' (1 under way)' : ''}, ${plural(b.probes, 'probe', 'probes')} sent, ${plural(b.found, 'path', 'paths')} found`;
}

function shortKey(k: string): string {
  return k.length > 8 ? `${k.slice(0, 8)}…` : k;
}

/** A relay address with its key shortened: `sLtEnRnF…@relay.example.org:3478/8080` */
export function shortRelay(address: string): string {
  const at = address.indexOf('@');
  return printable(at < 0 ? address : `${shortKey(address.slice(0, at))}${address.slice(at)}`);
}

function liveness(p: PeerStatus): string {
  if (!p.liveness) return '-';
  return p.livenessAgeMs === undefined ? p.liveness : `${p.liveness} ${formatDuration(p.livenessAgeMs)}`;
}

function peerLabel(p: PeerStatus): string {
  return `${p.index}${p.name ? ` ${printable(p.name)}` : ''}`;
}

function peerRow(p: PeerStatus): string[] {
  return [
    peerLabel(p),
    p.state,
    liveness(p),
    formatPath(p.path),
    formatMechanism(p.path),
    formatRtt(p.rttMs),
    formatBytes(p.bytesSent),
    formatBytes(p.bytesReceived),
    formatDuration(p.handshakeAgeMs),
    String(p.streams),
    p.lastError ? printable(p.lastError) : '-',
  ];
}

/** Columns padded to their widest cell; `header` undefined: rows only. */
export function table(header: string[] | undefined, rows: string[][]): string {
  const all = header ? [header, ...rows] : rows;
  const widths = (all[0] ?? []).map((_, c) => Math.max(...all.map((r) => r[c]!.length)));
  const line = (cells: string[]): string => cells.map((x, c) => (c === cells.length - 1 ? x : x.padEnd(widths[c]!))).join('  ').trimEnd();
  return all.map(line).join('\n');
}

function relayRow(r: RelayStatus): string[] {
  return ['relay', shortRelay(r.address), r.transport ?? '-', r.registered ? `registered${r.reason ? ` — ${printable(r.reason)}` : ''}` : `NOT registered${r.reason ? `: ${printable(r.reason)}` : ''}`];
}

export function formatStatus(s: AgentStatus): string {
  const own = s.peers.length + 1;
  const out: string[] = [];
  out.push(`party ${s.ownIndex} of ${own}  key ${shortKey(s.publicKey)}  up ${formatDuration(s.uptimeMs)}  run: ${printable(s.mpycCommand)}`);
  out.push(table(undefined, (s.relays ?? [s.relay]).map(relayRow)));
  const reflexive = s.reflexiveAddresses ?? (s.reflexiveAddress ? [s.reflexiveAddress] : []);
  const addr = [
    `reflexive ${reflexive.length ? reflexive.join(', ') : '-'}`,
    `local ${s.localAddresses.length ? s.localAddresses.join(', ') : '-'}`,
    `udp port ${s.udpPort}${s.udpPort6 !== undefined ? `, IPv6 ${s.udpPort6}` : ''}`,
  ];
  out.push(`addresses  ${addr.join('  ')}`);
  if (s.mapping || s.portMapping) out.push(`nat  ${s.mapping ? `mapping ${formatMapping(s.mapping)}  ` : ''}port mapping ${formatPortMapping(s.portMapping)}`);
  out.push('');
  const peers = [...s.peers].sort((a, b) => a.index - b.index);
  out.push(table(['PEER', 'STATE', 'LIVENESS', 'PATH', 'FOUND BY', 'RTT', 'SENT', 'RECEIVED', 'HANDSHAKE', 'STREAMS', 'LAST ERROR'], peers.map(peerRow)));
  const reach = peers.filter((p) => p.birthday || peerMappingText(p.mapping) !== '-');
  if (reach.length) {
    out.push('');
    out.push(table(['PEER', 'NAT (AS THE PEER REPORTS IT)', 'BIRTHDAY PROBING'], reach.map((p) => [peerLabel(p), peerMappingText(p.mapping), formatBirthday(p.birthday)])));
  }
  return out.join('\n') + '\n';
}

/**
 * The status for --json with every fractional number rounded, so the output carries the
 * precision the measurement has and not 15 digits of float noise: round-trip times (keys
 * containing "rtt", milliseconds) to 0.01 ms = 10 µs; every other fractional number
 * (durations and ages in milliseconds) to 0.1 ms. Integers (counts, bytes, ports) are kept.
 */
export function roundStatus<T>(value: T): T {
  const walk = (v: unknown, key: string): unknown => {
    if (typeof v === 'number') {
      if (Number.isInteger(v) || !Number.isFinite(v)) return v;
      const step = /rtt/i.test(key) ? 100 : 10;
      return Math.round(v * step) / step;
    }
    if (Array.isArray(v)) return v.map((x) => walk(x, key));
    if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, k)]));
    return v;
  };
  return walk(value, '') as T;
}
