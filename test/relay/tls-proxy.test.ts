// TLS on the relay's HTTP port (https, wss) and the client reaching it through an HTTP
// proxy with CONNECT (issue 13 item 10). Certificate: test/relay/fixtures (self-signed,
// localhost / 127.0.0.1, test only).
import { describe, it, expect, afterEach } from 'vitest';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startRelay, waitFor, type Relay } from './helpers.js';
import { RelayClient, relayWsUrl } from '../../src/relay/client.js';
import { proxyFor, bypassesProxy } from '../../src/relay/ws-proxy.js';
import { generateKeyPair } from '../../src/noise/index.js';
import { LobbyClient } from '../../src/lobby/client.js';
import { OP_READ, STATUS } from '../../src/lobby/wire.js';
import { PeerKey } from '../../src/common/peer-key.js';

const FIX = join(import.meta.dirname, 'fixtures');
const cert = readFileSync(join(FIX, 'tls-cert.pem'));
const key = readFileSync(join(FIX, 'tls-key.pem'));
const closers: Array<() => void | Promise<void>> = [];
afterEach(async () => { for (const c of closers.splice(0).reverse()) await c(); });

async function tlsRelay(): Promise<Relay> {
  const r = await startRelay({ tls: { cert, key } });
  closers.push(() => r.server.stop(false));
  return r;
}

/** A minimal HTTP CONNECT proxy on loopback that records the targets it was asked for. */
async function connectProxy(): Promise<{ port: number; targets: string[] }> {
  const targets: string[] = [];
  const server = http.createServer((_req, res) => { res.writeHead(405); res.end(); });
  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    targets.push(req.url ?? '');
    const [host, port] = (req.url ?? '').split(':');
    if (host !== '127.0.0.1') { client.end('HTTP/1.1 403 Forbidden\r\n\r\n'); return; } // loopback only
    const up = net.connect(Number(port), host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      up.write(head);
      up.pipe(client); client.pipe(up);
    });
    up.on('error', () => client.destroy());
    client.on('error', () => up.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  closers.push(() => { server.closeAllConnections(); return new Promise<void>((r) => server.close(() => r())); });
  return { port: (server.address() as net.AddressInfo).port, targets };
}

describe('TLS and proxies', () => {
  it('with a certificate the HTTP port speaks https (healthz) and wss (a client registers)', async () => {
    const r = await tlsRelay();
    const body = await new Promise<string>((res, rej) => {
      https.get({ host: '127.0.0.1', port: r.httpPort, path: '/healthz', ca: cert }, (resp) => {
        let b = ''; resp.on('data', (d) => { b += String(d); }); resp.on('end', () => res(b));
      }).on('error', rej);
    });
    expect(JSON.parse(body).status).toBe('ok');
    const url = relayWsUrl('127.0.0.1', r.httpPort, { tls: true });
    expect(url).toBe(`wss://127.0.0.1:${r.httpPort}/relay`);
    const c = new RelayClient({ relayKey: r.key.publicKey, keyPair: generateKeyPair(), transport: 'ws', wsUrl: url, wsCa: cert, proxy: '' });
    closers.push(() => c.close());
    c.start();
    await waitFor(() => c.state === 'registered', 5000, 'registration over wss');
    expect(r.server.agentCount).toBe(1);
    // plain HTTP on the TLS port gets nowhere
    const plain = await fetch(`http://127.0.0.1:${r.httpPort}/healthz`).then(() => 'answered', () => 'refused');
    expect(plain).toBe('refused');
  });

  it('a client reaches a wss relay through an HTTP proxy (CONNECT) given as an option', async () => {
    const r = await tlsRelay();
    const proxy = await connectProxy();
    const c = new RelayClient({
      relayKey: r.key.publicKey, keyPair: generateKeyPair(), transport: 'ws',
      wsUrl: relayWsUrl('127.0.0.1', r.httpPort, { tls: true }), wsCa: cert, proxy: `http://127.0.0.1:${proxy.port}`,
    });
    closers.push(() => c.close());
    c.start();
    await waitFor(() => c.state === 'registered', 5000, 'registration through the proxy');
    expect(proxy.targets).toEqual([`127.0.0.1:${r.httpPort}`]);
  });

  it('the lobby client (invite create / join) takes the same proxy as the WebSocket', async () => {
    const r = await startRelay();
    closers.push(() => r.server.stop(false));
    const proxy = await connectProxy();
    const relay = { publicKey: PeerKey.fromBytes(r.key.publicKey).text, host: '127.0.0.1', udpPort: r.udpPort, httpPort: r.httpPort };
    const read = { op: OP_READ, lobbyId: new Uint8Array(16).fill(1), fromEntry: 0, fromConfirm: 0 } as const;
    const via = await new LobbyClient(relay, 5000, `http://127.0.0.1:${proxy.port}`).send(read);
    expect(via.status).toBe(STATUS.NOT_FOUND); // a real lobby answer, through the tunnel
    expect(proxy.targets).toEqual([`127.0.0.1:${r.httpPort}`]);
    const direct = await new LobbyClient(relay, 5000, '').send(read);
    expect(direct.status).toBe(STATUS.NOT_FOUND);
    expect(proxy.targets).toHaveLength(1);
    // a proxy that refuses the target: the request fails instead of going around it
    const refusing = new LobbyClient({ ...relay, host: 'localhost' }, 5000, `http://127.0.0.1:${proxy.port}`);
    await expect(refusing.send(read)).rejects.toThrow(/lobby/);
  });

  it('proxy choice: option, then HTTPS_PROXY / HTTP_PROXY / ALL_PROXY by scheme, minus NO_PROXY', () => {
    const wss = 'wss://relay.example.org:443/relay', ws = 'ws://relay.example.org:8080/relay';
    expect(proxyFor(wss, 'http://p:1', {})).toBe('http://p:1');
    expect(proxyFor(wss, '', { HTTPS_PROXY: 'http://q:2' })).toBeUndefined();
    expect(proxyFor(wss, undefined, { HTTPS_PROXY: 'http://q:2', HTTP_PROXY: 'http://h:3' })).toBe('http://q:2');
    expect(proxyFor(ws, undefined, { https_proxy: 'http://q:2', http_proxy: 'http://h:3' })).toBe('http://h:3');
    expect(proxyFor(ws, undefined, { ALL_PROXY: 'http://a:4' })).toBe('http://a:4');
    expect(proxyFor(wss, undefined, { HTTPS_PROXY: 'http://q:2', NO_PROXY: 'example.org' })).toBeUndefined();
    expect(proxyFor(wss, undefined, {})).toBeUndefined();
    expect(bypassesProxy('relay.example.org', 443, '.example.org')).toBe(true);
    expect(bypassesProxy('relay.example.org', 443, 'other.org, example.org:8443')).toBe(false);
    expect(bypassesProxy('relay.example.org', 8443, 'example.org:8443')).toBe(true);
    expect(bypassesProxy('[::1]', 80, '::1')).toBe(true);
    expect(bypassesProxy('x', 1, '*')).toBe(true);
  });
});
