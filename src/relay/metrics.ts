// Prometheus metrics for one relay instance, on its own Registry (several relays can
// live in one process, e.g. tests). The forwarding path bumps plain numbers in
// RelayCounters; prom-client reads them at scrape time, so no per-packet label lookups.
import { Counter, Gauge, Registry } from 'prom-client';

export const DROP_REASONS = [
  'unknown_type', 'malformed', 'oversized', 'unregistered', 'no_peer', 'rate_limited',
  'queue_overflow', 'unexpected_frame', 'not_binary',
  // version 2: authenticated control, accept sets, per-source / per-destination / global budgets
  'bad_auth', 'not_accepted', 'source_rate_limited', 'dest_rate_limited', 'global_rate_limited',
  'stun_rate_limited',
  // version 3: a SEND or PING without its registration's token (a spoofed source address)
  'bad_token',
] as const;
export type DropReason = (typeof DROP_REASONS)[number];

export const REG_FAILURES = [
  'bad_cookie', 'stale_cookie', 'replay', 'bad_handshake', 'not_allowed', 'full', 'malformed',
  'rate_limited',
] as const;
export type HttpRefusal = 'total' | 'per_source';
export type RegFailure = (typeof REG_FAILURES)[number];

export class RelayCounters {
  forwardedPackets = 0;
  forwardedBytes = 0;
  stunRequests = 0;
  stunDrops = 0;
  registrations = 0;
  /** a handler threw: a bug, never expected (tests assert 0); the datagram was dropped */
  handlerErrors = 0;
  /** the same key registered from two sources that keep evicting each other */
  keyConflicts = 0;
  /** registrations the agent ended itself (LEAVE: it stopped) */
  leaves = 0;
  readonly httpRefused: Record<HttpRefusal, number> = { total: 0, per_source: 0 };
  readonly drops: Record<DropReason, number> = Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>;
  readonly regFailures: Record<RegFailure, number> = Object.fromEntries(REG_FAILURES.map((r) => [r, 0])) as Record<RegFailure, number>;
}

export interface GaugeSource {
  agents(): { udp: number; ws: number };
  queueDepth(): number;
}

/** A counter whose value is mirrored from a plain number at scrape time. */
function mirrorCounter(registry: Registry, name: string, help: string, labelNames: string[], read: () => Array<[Record<string, string>, number]>): void {
  const seen = new Map<string, number>();
  new Counter({
    name, help, labelNames, registers: [registry],
    collect() {
      for (const [labels, v] of read()) {
        const k = JSON.stringify(labels);
        const d = v - (seen.get(k) ?? 0);
        if (d > 0) { this.inc(labels, d); seen.set(k, v); }
      }
    },
  });
}

export function createRelayMetrics(c: RelayCounters, g: GaugeSource): Registry {
  const r = new Registry();
  new Gauge({
    name: 'mpyc_relay_registered_agents', help: 'Agents currently registered, by transport',
    labelNames: ['transport'], registers: [r],
    collect() { const a = g.agents(); this.set({ transport: 'udp' }, a.udp); this.set({ transport: 'ws' }, a.ws); },
  });
  new Gauge({
    name: 'mpyc_relay_queue_depth', help: 'Frames waiting in WebSocket send queues',
    registers: [r], collect() { this.set(g.queueDepth()); },
  });
  mirrorCounter(r, 'mpyc_relay_forwarded_packets_total', 'Packets forwarded between agents', [], () => [[{}, c.forwardedPackets]]);
  mirrorCounter(r, 'mpyc_relay_forwarded_bytes_total', 'Bytes of forwarded frames', [], () => [[{}, c.forwardedBytes]]);
  mirrorCounter(r, 'mpyc_relay_stun_requests_total', 'STUN Binding requests answered', [], () => [[{}, c.stunRequests]]);
  mirrorCounter(r, 'mpyc_relay_registrations_total', 'Successful registrations', [], () => [[{}, c.registrations]]);
  mirrorCounter(r, 'mpyc_relay_leaves_total', 'Registrations ended by the agent (LEAVE: it stopped)', [], () => [[{}, c.leaves]]);
  mirrorCounter(r, 'mpyc_relay_dropped_total', 'Frames dropped, by reason', ['reason'],
    () => [...DROP_REASONS.map((k) => [{ reason: k }, c.drops[k]] as [Record<string, string>, number]),
      [{ reason: 'stun_malformed' }, c.stunDrops]]);
  mirrorCounter(r, 'mpyc_relay_handler_errors_total', 'Frames whose handler threw (a bug; the frame was dropped)', [], () => [[{}, c.handlerErrors]]);
  mirrorCounter(r, 'mpyc_relay_key_conflicts_total', 'Keys registered from two places that evict each other', [], () => [[{}, c.keyConflicts]]);
  mirrorCounter(r, 'mpyc_relay_http_connections_refused_total', 'HTTP connections refused at a connection cap', ['cap'],
    () => [[{ cap: 'total' }, c.httpRefused.total], [{ cap: 'per_source' }, c.httpRefused.per_source]]);
  mirrorCounter(r, 'mpyc_relay_registration_failures_total', 'Registrations refused, by reason', ['reason'],
    () => REG_FAILURES.map((k) => [{ reason: k }, c.regFailures[k]]));
  return r;
}
