// netcheck's TCP half: can this host open the relay's WebSocket (the agent's fallback where
// UDP is blocked), directly and, when the environment names an HTTP proxy, through it
// (HTTP CONNECT, as networks that allow only HTTPS out require). The relay accepts the
// upgrade before any registration, so a successful open is the whole check; the socket is
// closed at once.
//
// Which proxy: the agent's own rule and CONNECT agent (src/relay/ws-proxy.ts), so what this
// reports is the way the agent's relay client goes.
import type { Agent } from 'node:http';
import WebSocket from 'ws';

/** an open takes a TCP handshake and one HTTP exchange; past this the relay is not reachable in any useful sense */
export const WS_TIMEOUT_MS = 5000;

export interface WsProbe {
  url: string;
  ok: boolean;
  /** from connect to the upgraded socket: about two round trips (TCP, then HTTP) */
  openMs?: number;
  error?: string;
}

/** Opens `url` (through `agent` if given) and closes it again. Never rejects. */
export function probeWebSocket(url: string, agent?: Agent): Promise<WsProbe> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    let settled = false;
    const finish = (r: Omit<WsProbe, 'url'>): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ws.terminate();
      resolve({ url, ...r });
    };
    const ws = new WebSocket(url, { handshakeTimeout: WS_TIMEOUT_MS, perMessageDeflate: false, ...(agent ? { agent } : {}) });
    // the handshake timeout covers the HTTP exchange; this covers a proxy that never answers too
    const timer = setTimeout(() => finish({ ok: false, error: `not open within ${WS_TIMEOUT_MS} ms` }), WS_TIMEOUT_MS + 500);
    ws.once('open', () => finish({ ok: true, openMs: performance.now() - t0 }));
    // through a proxy this can be the proxy's own refusal of CONNECT (407, 403, 502): its
    // status text says which
    ws.once('unexpected-response', (_req, res) => finish({ ok: false, error: `HTTP ${res.statusCode}${res.statusMessage ? ` ${res.statusMessage}` : ''} instead of a WebSocket upgrade${agent ? ' (from the proxy or, through it, the relay)' : ''}` }));
    // `on`, not `once`: terminate() of a socket still connecting emits one more error
    ws.on('error', (e: NodeJS.ErrnoException) => finish({ ok: false, error: e.code ?? e.message }));
  });
}
