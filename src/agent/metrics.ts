// The agent's Prometheus metrics (optional HTTP endpoint, `mpyc-agent up --metrics`).
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export class AgentMetrics {
  readonly registry = new Registry();
  readonly relayRegistered = new Gauge({ name: 'mpyc_agent_relay_registered', help: '1 while registered with the relay', registers: [this.registry] });
  readonly pathChanges = new Counter({ name: 'mpyc_agent_path_changes_total', help: 'path changes by new path kind', labelNames: ['to'], registers: [this.registry] });
  /** per-packet byte counts are plain numbers (label lookups per packet cost ~10 µs); read at scrape */
  private readonly byteCounts = { relay: { in: 0, out: 0 }, direct: { in: 0, out: 0 } };
  private readonly bytesTotal = new Counter({
    name: 'mpyc_agent_bytes_total', help: 'encrypted bytes by path and direction', labelNames: ['path', 'direction'], registers: [this.registry],
    collect: () => {
      // the plain counts are the source of truth: publish them as they are
      this.bytesTotal.reset();
      for (const path of ['relay', 'direct'] as const) {
        for (const direction of ['in', 'out'] as const) this.bytesTotal.inc({ path, direction }, this.byteCounts[path][direction]);
      }
    },
  });
  private readonly drops = new Counter({ name: 'mpyc_agent_dropped_packets_total', help: 'datagrams dropped, by reason', labelNames: ['reason'], registers: [this.registry] });
  private readonly peerPath = new Gauge({ name: 'mpyc_agent_peer_path', help: '1 for the path kind each peer uses', labelNames: ['peer', 'path'], registers: [this.registry] });
  private readonly rtt = new Histogram({ name: 'mpyc_agent_rtt_seconds', help: 'smoothed transport RTT per peer, sampled at scrape', labelNames: ['peer'],
    buckets: [0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1], registers: [this.registry] });
  private readonly retrans = new Gauge({ name: 'mpyc_agent_retransmitted_packets', help: 'transport packets retransmitted, per peer (current connection)', labelNames: ['peer'], registers: [this.registry] });
  /** plain counts for status and tests */
  readonly dropCounts = new Map<string, number>();

  drop(reason: string): void {
    this.drops.inc({ reason });
    this.dropCounts.set(reason, (this.dropCounts.get(reason) ?? 0) + 1);
  }

  bytes(path: 'relay' | 'direct', direction: 'in' | 'out', n: number): void {
    this.byteCounts[path][direction] += n;
  }

  observePeer(peer: string, path: 'relay' | 'direct', rttMs: number, retransmitted: number): void {
    this.peerPath.set({ peer, path: 'relay' }, path === 'relay' ? 1 : 0);
    this.peerPath.set({ peer, path: 'direct' }, path === 'direct' ? 1 : 0);
    if (rttMs > 0) this.rtt.observe({ peer }, rttMs / 1000);
    this.retrans.set({ peer }, retransmitted);
  }
}
