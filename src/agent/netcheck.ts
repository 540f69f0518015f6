// `mpyc-agent netcheck`'s checks, run side by side: every relay host resolved (both
// families), STUN from this host to each address (netcheck-stun.ts), the WebSocket to each
// relay with an HTTP port, through the environment's proxy if it names one and then also
// without (netcheck-ws.ts); gathered into one NetcheckReport (netcheck-report.ts).
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { relayWsUrlOf } from '../relay/client.js';
import { canonicalIp } from './addresses.js';
import { formatRelayAddress } from './session-file.js';
import { probeStun, type StunTarget } from './netcheck-stun.js';
import { probeWebSocket } from './netcheck-ws.js';
import { proxyAgentFor, proxyFor } from '../relay/ws-proxy.js';
import { nearestRelay, type NetcheckReport, type RelayCheck } from './netcheck-report.js';
import type { RelayAddress } from './types.js';

async function resolve(host: string): Promise<{ addresses: string[]; error?: string }> {
  if (isIP(host)) return { addresses: [canonicalIp(host)!] };
  try {
    const all = await lookup(host, { all: true });
    return { addresses: [...new Set(all.map((a) => canonicalIp(a.address)).filter((a): a is string => a !== null))] };
  } catch (e) {
    return { addresses: [], error: `${host} does not resolve (${(e as NodeJS.ErrnoException).code ?? String(e)})` };
  }
}

/** A proxy URL without its credentials, for output. */
function shownProxy(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString().replace(/\/$/, '');
  } catch {
    return '(unparsable proxy URL)';
  }
}

async function checkWebSocket(r: RelayAddress): Promise<RelayCheck['websocket']> {
  const url = relayWsUrlOf(r);
  if (url === undefined) return undefined;
  const proxy = proxyFor(url, undefined);
  if (!proxy) return { used: await probeWebSocket(url) };
  let agent;
  try { agent = proxyAgentFor(url, proxy)!; } catch (e) {
    return { used: { url, ok: false, error: `proxy ${shownProxy(proxy)}: ${(e as Error).message}` }, direct: await probeWebSocket(url), proxy: shownProxy(proxy) };
  }
  const [used, direct] = await Promise.all([probeWebSocket(url, agent), probeWebSocket(url)]);
  agent.destroy();
  return { used, direct, proxy: shownProxy(proxy) };
}

export async function netcheck(relays: readonly RelayAddress[]): Promise<NetcheckReport> {
  const resolved = await Promise.all(relays.map((r) => resolve(r.host)));
  const targets: StunTarget[] = relays.flatMap((r, relay) => resolved[relay]!.addresses.map((address) => ({ relay, address, port: r.udpPort })));
  const [stun, websockets] = await Promise.all([probeStun(targets), Promise.all(relays.map(checkWebSocket))]);
  const checks: RelayCheck[] = relays.map((r, index) => ({
    index,
    address: formatRelayAddress(r),
    resolved: resolved[index]!.addresses,
    ...(resolved[index]!.error ? { resolveError: resolved[index]!.error } : {}),
    udp: stun.probes.filter((p) => p.relay === index),
    ...(websockets[index] ? { websocket: websockets[index] } : {}),
  }));
  const withWs = checks.filter((c) => c.websocket);
  return {
    relays: checks,
    udp: stun.probes.some((p) => p.reflexive !== undefined),
    families: stun.families,
    websocket: withWs.length === 0 ? null : withWs.some((c) => c.websocket!.used.ok),
    nearest: nearestRelay(checks),
  };
}

