// The agent's optional HTTP endpoint (`mpyc-agent up --metrics HOST:PORT`):
//   GET /metrics   Prometheus text exposition
//   GET /healthz   {"status":"ok"|"stopping","party":i,"relayRegistered":bool,"peers":{STATE: count},"uptimeMs":n}
//                  200 while the agent runs, 503 once it is stopping (a load balancer or
//                  systemd watchdog script sees the stop before the port closes)
// Anything else: 404; methods other than GET/HEAD: 405.
import { createServer, type Server } from 'node:http';
import type { AgentStatus } from './types.js';

export interface MetricsSource {
  metrics(): Promise<string>;
  status(): AgentStatus;
}

export interface MetricsEndpoint {
  readonly port: number;
  /** /healthz answers 503 from now on */
  markStopping(): void;
  close(): Promise<void>;
}

export function healthOf(st: AgentStatus, stopping: boolean): Record<string, unknown> {
  const peers: Record<string, number> = {};
  for (const p of st.peers) peers[p.state] = (peers[p.state] ?? 0) + 1;
  return { status: stopping ? 'stopping' : 'ok', party: st.ownIndex, relayRegistered: st.relay.registered, peers, uptimeMs: Math.round(st.uptimeMs) };
}

export async function startMetricsEndpoint(host: string, port: number, source: MetricsSource): Promise<MetricsEndpoint> {
  let stopping = false;
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics' && path !== '/healthz') { res.writeHead(404, { 'content-type': 'text/plain' }).end('not found (try /metrics or /healthz)\n'); return; }
    if (req.method !== 'GET' && req.method !== 'HEAD') { res.writeHead(405, { allow: 'GET, HEAD' }).end(); return; }
    if (path === '/healthz') {
      let body: string;
      try { body = JSON.stringify(healthOf(source.status(), stopping)); } catch (e) {
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`status failed: ${(e as Error).message}\n`);
        return;
      }
      res.writeHead(stopping ? 503 : 200, { 'content-type': 'application/json' }).end(body + '\n');
      return;
    }
    source.metrics().then((text) => res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(text),
      (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${String(err)}\n`));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => { server.off('error', reject); resolve(); });
  });
  server.on('error', () => { /* accept errors (EMFILE) must not crash the agent */ });
  return {
    port: (server.address() as { port: number }).port,
    markStopping: () => { stopping = true; },
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
