// What `mpyc-agent netcheck` found, as one object (its --json output) and as text:
//
//   mpyc-agent netcheck: 2 relays, checked from this host (no agent needed)
//
//     UDP        yes: 2 of 2 relays answered STUN
//     IPv4       reflexive 203.0.113.7:41641 (behind a NAT; local port 41641)
//     IPv6       no relay has an IPv6 address
//     mapping    IPv4 endpoint-independent: the same reflexive address from 2 STUN endpoints
//     WebSocket  yes: 2 of 2 relays
//     nearest    relay 0: 1.2 ms (UDP)
//
//     relay 0  sLtEnRnF…@198.18.1.2:3478/8080
//       UDP  198.18.1.2:3478  1.2 ms  reflexive 203.0.113.7:41641  3 of 3 answered
//       WebSocket  ws://198.18.1.2:8080/relay  open in 2.5 ms
import { printable } from '../common/cli.js';
import { formatRtt, shortRelay } from './status-format.js';
import { endpointText, type Family } from './addresses.js';
import type { FamilyReport, StunProbe } from './netcheck-stun.js';
import type { WsProbe } from './netcheck-ws.js';

export interface RelayCheck {
  index: number;
  address: string;
  /** the addresses its host resolved to */
  resolved: string[];
  resolveError?: string;
  /** its STUN endpoints, and the second endpoint it named (other: true) */
  udp: StunProbe[];
  /** absent: the relay address has no /httpPort */
  websocket?: {
    /** the way the agent goes: through `proxy` when one is set for this relay */
    used: WsProbe;
    /** with a proxy: the same without it, to tell a proxy problem from a relay problem */
    direct?: WsProbe;
    proxy?: string;
  };
}

export interface NetcheckReport {
  relays: RelayCheck[];
  /** some relay answered STUN */
  udp: boolean;
  /** per family that some relay has an address of */
  families: FamilyReport[];
  /** some relay's WebSocket opened (the way the agent goes); null: no relay has an HTTP port */
  websocket: boolean | null;
  nearest?: { relay: number; rttMs: number; over: 'udp' | 'websocket' };
}

/** A relay answered one way or the other: the agent can work from here. */
export function reachable(r: NetcheckReport): boolean {
  return r.udp || r.websocket === true;
}

/** The smallest UDP round trip of a relay's own endpoints (OTHER-ADDRESS ones are the same host). */
export function relayRtt(c: RelayCheck): number | undefined {
  const rtts = c.udp.filter((p) => !p.other && p.rttMs !== undefined).map((p) => p.rttMs!);
  return rtts.length ? Math.min(...rtts) : undefined;
}

/** The relay with the smallest UDP round trip; without UDP, the quickest WebSocket open. */
export function nearestRelay(relays: readonly RelayCheck[]): NetcheckReport['nearest'] {
  const udp = relays.flatMap((c) => { const rttMs = relayRtt(c); return rttMs === undefined ? [] : [{ relay: c.index, rttMs, over: 'udp' as const }]; });
  const ws = relays.flatMap((c) => { const rttMs = c.websocket?.used.openMs; return rttMs === undefined ? [] : [{ relay: c.index, rttMs, over: 'websocket' as const }]; });
  const pool = udp.length > 0 ? udp : ws;
  return pool.length === 0 ? undefined : pool.reduce((a, b) => (b.rttMs < a.rttMs ? b : a));
}

function familyLine(f: Family, r: NetcheckReport): string {
  const rep = r.families.find((x) => x.family === f);
  if (!rep) return `no relay has an IPv${f} address`;
  if (!rep.socket) return `no IPv${f} socket on this host (${printable(rep.error ?? 'unknown')})`;
  if (rep.reflexive.length === 0) return `no STUN answer over IPv${f}`;
  const nat = rep.nat === false ? 'no NAT: the address is this host\'s own' : 'behind a NAT';
  return `reflexive ${rep.reflexive.join(', ')} (${nat}; local port ${rep.localPort})`;
}

function mappingLine(r: NetcheckReport): string {
  if (r.families.length === 0) return '-';
  return r.families.map((f) => {
    const advice = f.mapping === 'endpoint-dependent' ? ' (a symmetric NAT: a peer behind one too is reached through the relay)' : '';
    return f.mapping === 'unknown' ? `IPv${f.family} unknown (${f.mappingReason})` : `IPv${f.family} ${f.mapping}: ${f.mappingReason}${advice}`;
  }).join('; ');
}

function wsLine(r: NetcheckReport): string {
  if (r.websocket === null) return 'not checked: no relay address has an /httpPort';
  const withWs = r.relays.filter((c) => c.websocket);
  const ok = withWs.filter((c) => c.websocket!.used.ok).length;
  const proxies = [...new Set(withWs.flatMap((c) => (c.websocket!.proxy ? [c.websocket!.proxy] : [])))];
  return `${ok > 0 ? 'yes' : 'no'}: ${ok} of ${withWs.length} relays${proxies.length ? `, through proxy ${proxies.join(', ')}` : ''}`;
}

function probeLine(p: StunProbe): string {
  const where = `${endpointText(p.address, p.port)}${p.other ? ' (its OTHER-ADDRESS)' : ''}`;
  if (p.reflexive === undefined) return `UDP  ${where}  ${printable(p.error ?? 'no answer')}`;
  return `UDP  ${where}  ${formatRtt(p.rttMs)}  reflexive ${p.reflexive}  ${p.answered} of ${p.sent} answered`;
}

function wsProbeLine(label: string, w: WsProbe): string {
  return `${label}  ${w.url}  ${w.ok ? `open in ${formatRtt(w.openMs)}` : printable(w.error ?? 'failed')}`;
}

export function formatNetcheck(r: NetcheckReport): string {
  const answered = r.relays.filter((c) => c.udp.some((p) => p.reflexive !== undefined)).length;
  const lines = [
    `mpyc-agent netcheck: ${r.relays.length} relay${r.relays.length === 1 ? '' : 's'}, checked from this host (no agent needed)`,
    '',
    `  UDP        ${r.udp ? 'yes' : 'no'}: ${answered} of ${r.relays.length} relays answered STUN`,
    `  IPv4       ${familyLine(4, r)}`,
    `  IPv6       ${familyLine(6, r)}`,
    `  mapping    ${mappingLine(r)}`,
    `  WebSocket  ${wsLine(r)}`,
    `  nearest    ${r.nearest ? `relay ${r.nearest.relay}: ${formatRtt(r.nearest.rttMs)} (${r.nearest.over === 'udp' ? 'UDP' : 'WebSocket open'})` : '-'}`,
  ];
  for (const c of r.relays) {
    lines.push('', `  relay ${c.index}  ${shortRelay(c.address)}`);
    if (c.resolveError) lines.push(`    ${printable(c.resolveError)}`);
    for (const p of c.udp) lines.push(`    ${probeLine(p)}`);
    if (c.websocket) {
      lines.push(`    ${wsProbeLine(c.websocket.proxy ? `WebSocket via ${c.websocket.proxy}` : 'WebSocket', c.websocket.used)}`);
      if (c.websocket.direct) lines.push(`    ${wsProbeLine('WebSocket without the proxy', c.websocket.direct)}`);
    }
  }
  if (!reachable(r)) lines.push('', 'No relay answered, over UDP or WebSocket: the agent cannot work from this network (check the relay addresses, and any firewall or proxy).');
  return lines.join('\n') + '\n';
}
