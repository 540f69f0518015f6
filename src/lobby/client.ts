// HTTP client for the relay's lobby API: one request frame out, one response frame back,
// over http or https (a relay whose HTTP port speaks TLS) and through the same HTTP(S)
// proxy the agent's WebSocket would take (src/relay/ws-proxy.ts: HTTPS_PROXY / HTTP_PROXY
// by scheme, NO_PROXY), since a network that lets only a proxy out must still let a party join.
import * as http from 'node:http';
import * as https from 'node:https';
import type { LobbyRelay } from './invite.js';
import { proxyAgentFor } from '../relay/ws-proxy.js';
import { LOBBY_PATH, decodeResponse, encodeRequest, type Request, type Response } from './wire.js';

/** A response larger than this is not a lobby response (a view of 1000 members is ~1.1 MB). */
const MAX_RESPONSE_BYTES = 4 << 20;

/** The relay could not be reached, or answered something that is not a lobby response. */
export class LobbyTransportError extends Error {
  override name = 'LobbyTransportError';
}

export function lobbyUrl(relay: LobbyRelay): string {
  const host = relay.host.includes(':') ? `[${relay.host}]` : relay.host;
  return `${relay.tls ? 'https' : 'http'}://${host}:${relay.httpPort}${LOBBY_PATH}`;
}

interface Answer { status: number; contentType: string | undefined; body: Uint8Array | null }

export class LobbyClient {
  readonly url: string;
  private readonly agent: http.Agent | undefined;

  /** `proxy`: an explicit proxy URL, '' for none; default from the environment */
  constructor(relay: LobbyRelay, private readonly timeoutMs = 10_000, proxy?: string) {
    this.url = lobbyUrl(relay);
    this.agent = proxyAgentFor(this.url, proxy);
  }

  async send(req: Request): Promise<Response> {
    let res: Answer;
    try {
      res = await this.post(encodeRequest(req));
    } catch (err) {
      const cause = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      // a certificate this machine does not trust is the usual failure of a private relay
      const hint = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(cause)
        ? ': the relay\'s TLS certificate is not trusted here (for a private CA, point NODE_EXTRA_CA_CERTS at its certificate)' : '';
      throw new LobbyTransportError(`cannot reach the relay at ${this.url} (${cause})${hint}`);
    }
    if (res.status === 404 && res.contentType !== 'application/octet-stream') {
      throw new LobbyTransportError(`the relay at ${this.url} does not host lobbies (lobbies turned off, or an older mpyc-relay)`);
    }
    const decoded = res.body && decodeResponse(res.body);
    if (!decoded) throw new LobbyTransportError(`the relay at ${this.url} sent something that is not a lobby response (HTTP ${res.status})`);
    return decoded;
  }

  /** POSTs `body`; the answer's body is null once it grows past MAX_RESPONSE_BYTES (the rest is not read). */
  private post(body: Uint8Array): Promise<Answer> {
    const lib = this.url.startsWith('https:') ? https : http;
    return new Promise((resolve, reject) => {
      const r = lib.request(this.url, {
        method: 'POST', agent: this.agent, timeout: this.timeoutMs,
        headers: { 'content-type': 'application/octet-stream', 'content-length': body.length },
      }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_RESPONSE_BYTES) { res.destroy(); resolve({ status: res.statusCode ?? 0, contentType: res.headers['content-type'], body: null }); return; }
          chunks.push(c);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: res.headers['content-type'], body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      // one deadline for the whole exchange, not only for silence between packets
      const deadline = setTimeout(() => r.destroy(Object.assign(new Error('timeout'), { code: 'TimeoutError' })), this.timeoutMs);
      r.on('close', () => clearTimeout(deadline));
      r.on('timeout', () => r.destroy(Object.assign(new Error('timeout'), { code: 'TimeoutError' })));
      r.on('error', reject);
      r.end(body);
    });
  }
}
