// The agent's Prometheus metrics (optional HTTP endpoint, `mpyc-agent up --metrics`).
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** What the metrics read from each peer at scrape time. */
export interface PeerMetricsView {
  peer: string;
  path: 'relay' | 'direct';
  retransmittedTotal: number;
}

export class AgentMetrics {
  readonly registry = new Registry();
  readonly relayRegistered = new Gauge({ name: 'mpyc_agent_relay_registered', help: 'number of the session\'s relays we are registered with now (every relay at once)', registers: [this.registry] });
  readonly pathChanges = new Counter({ name: 'mpyc_agent_path_changes_total', help: 'path changes by new path kind', labelNames: ['to'], registers: [this.registry] });
  /** per-packet byte counts are plain numbers (label lookups per packet cost ~10 µs); read at scrape */
  private readonly byteCounts = { relay: { in: 0, out: 0 }, direct: { in: 0, out: 0 } };
  private readonly bytesTotal = new Counter({
    name: 'mpyc_agent_bytes_total', help: 'encrypted bytes by path and direction (out: handed to the socket or relay)', labelNames: ['path', 'direction'], registers: [this.registry],
    collect: () => {
      // the plain counts are the source of truth: publish them as they are
      this.bytesTotal.reset();
      for (const path of ['relay', 'direct'] as const) {
        for (const direction of ['in', 'out'] as const) this.bytesTotal.inc({ path, direction }, this.byteCounts[path][direction]);
      }
    },
  });
  private readonly drops = new Counter({ name: 'mpyc_agent_dropped_packets_total', help: 'datagrams dropped, by reason', labelNames: ['reason'], registers: [this.registry] });
  private peers: () => PeerMetricsView[] = () => [];
  private readonly peerPath = new Gauge({ name: 'mpyc_agent_peer_path', help: '1 for the path kind each peer uses', labelNames: ['peer', 'path'], registers: [this.registry],
    collect: () => {
      for (const v of this.peers()) {
        this.peerPath.set({ peer: v.peer, path: 'relay' }, v.path === 'relay' ? 1 : 0);
        this.peerPath.set({ peer: v.peer, path: 'direct' }, v.path === 'direct' ? 1 : 0);
      }
    },
  });
  private readonly rtt = new Histogram({ name: 'mpyc_agent_rtt_seconds', help: 'measured round trips to peers (path probes, heartbeats, pings), one observation per sample', labelNames: ['peer'],
    buckets: [0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1], registers: [this.registry] });
  private readonly retrans = new Counter({ name: 'mpyc_agent_retransmitted_packets_total', help: 'transport packets retransmitted, per peer', labelNames: ['peer'], registers: [this.registry],
    collect: () => {
      this.retrans.reset();
      for (const v of this.peers()) this.retrans.inc({ peer: v.peer }, v.retransmittedTotal);
    },
  });
  /** plain counts for status and tests */
  readonly dropCounts = new Map<string, number>();

  /** Where the per-peer gauges and counters are read from at scrape time. */
  readPeersFrom(fn: () => PeerMetricsView[]): void {
    this.peers = fn;
  }

  drop(reason: string): void {
    this.drops.inc({ reason });
    this.dropCounts.set(reason, (this.dropCounts.get(reason) ?? 0) + 1);
  }

  bytes(path: 'relay' | 'direct', direction: 'in' | 'out', n: number): void {
    this.byteCounts[path][direction] += n;
  }

  rttSample(peer: string, rttMs: number): void {
    this.rtt.observe({ peer }, rttMs / 1000);
  }
}
