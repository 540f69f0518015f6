// HTTP client for the relay's lobby API: one request frame out, one response frame back.
import type { LobbyRelay } from './invite.js';
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

export class LobbyClient {
  readonly url: string;

  constructor(relay: LobbyRelay, private readonly timeoutMs = 10_000) {
    this.url = lobbyUrl(relay);
  }

  async send(req: Request): Promise<Response> {
    let res: globalThis.Response;
    try {
      res = await fetch(this.url, {
        method: 'POST', body: encodeRequest(req), headers: { 'content-type': 'application/octet-stream' },
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name;
      // a certificate this machine does not trust is the usual failure of a private relay
      const hint = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(cause)
        ? ': the relay\'s TLS certificate is not trusted here (for a private CA, point NODE_EXTRA_CA_CERTS at its certificate)' : '';
      throw new LobbyTransportError(`cannot reach the relay at ${this.url} (${cause})${hint}`);
    }
    if (res.status === 404 && res.headers.get('content-type') !== 'application/octet-stream') {
      await res.body?.cancel();
      throw new LobbyTransportError(`the relay at ${this.url} does not host lobbies (lobbies turned off, or an older mpyc-relay)`);
    }
    const body = await readCapped(res, MAX_RESPONSE_BYTES);
    const decoded = body && decodeResponse(body);
    if (!decoded) throw new LobbyTransportError(`the relay at ${this.url} sent something that is not a lobby response (HTTP ${res.status})`);
    return decoded;
  }
}

/** The body, or null once it grows past `max` (the rest is not read). */
async function readCapped(res: globalThis.Response, max: number): Promise<Uint8Array | null> {
  if (!res.body) return new Uint8Array(0);
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > max) { await reader.cancel(); return null; }
      chunks.push(value);
    }
  } catch {
    return null;
  }
  return Buffer.concat(chunks);
}
