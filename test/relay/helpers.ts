import * as dgram from 'node:dgram';
import type { ChildProcess } from 'node:child_process';
import { RelayServer, type RelayServerOptions } from '../../src/relay/server.js';
import { RelayClient, relayWsUrl, type RelayClientOptions, type RelayTransportMode } from '../../src/relay/client.js';
import { generateKeyPair, type KeyPair } from '../../src/noise/index.js';
import { isRelayFrame } from '../../src/relay/wire.js';
import { PeerKey } from '../../src/common/peer-key.js';

export interface Relay { server: RelayServer; key: KeyPair; udpPort: number; httpPort: number; stunAltPort: number | undefined }

export async function startRelay(opts: Partial<RelayServerOptions> = {}): Promise<Relay> {
  const key = generateKeyPair();
  const server = new RelayServer({ keyPair: key, udp: { host: '127.0.0.1', port: 0 }, http: { host: '127.0.0.1', port: 0 }, ...opts });
  const { udpPort, httpPort, stunAltPort } = await server.start();
  return { server, key, udpPort, httpPort: httpPort!, stunAltPort };
}

export interface Agent { client: RelayClient; key: KeyPair; keyB64: string; socket: dgram.Socket | undefined; close(): void }

export async function startAgent(relay: Relay, transport: RelayTransportMode, extra: Partial<RelayClientOptions> = {}): Promise<Agent> {
  const key = extra.keyPair ?? generateKeyPair();
  let socket: dgram.Socket | undefined;
  if (transport !== 'ws') {
    socket = dgram.createSocket('udp4');
    await new Promise<void>((r) => socket!.bind(0, '127.0.0.1', () => r()));
  }
  const client = new RelayClient({
    relayKey: relay.key.publicKey, keyPair: key, transport,
    sendUdp: socket ? (f) => socket!.send(f, relay.udpPort, '127.0.0.1') : undefined,
    wsUrl: relayWsUrl('127.0.0.1', relay.httpPort),
    ...extra,
  });
  socket?.on('message', (m) => { if (isRelayFrame(m)) client.handleDatagram(m); });
  return {
    client, key, keyB64: PeerKey.fromBytes(key.publicKey).text, socket,
    close() { client.close(); try { socket?.close(); } catch { /* closed */ } },
  };
}

export function waitFor(pred: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const poll = (): void => {
      if (pred()) { resolve(); return; }
      if (Date.now() - t0 > ms) { reject(new Error(`timed out waiting for ${what}`)); return; }
      setTimeout(poll, 5);
    };
    poll();
  });
}

export async function registered(a: Agent, ms = 5000): Promise<void> {
  a.client.start();
  await waitFor(() => a.client.state === 'registered', ms, `registration of ${a.keyB64}`);
}

/** The `listening` JSON line an `mpyc-relay serve` child writes to stderr (10 s at most). */
export function listeningLine<T = Record<string, unknown>>(p: ChildProcess): Promise<T> {
  return new Promise((res, rej) => {
    let out = '';
    const t = setTimeout(() => rej(new Error(`no listening line: ${out}`)), 10_000);
    p.stderr!.on('data', (d) => {
      out += String(d);
      for (const l of out.split('\n')) { try { const j = JSON.parse(l); if (j.msg === 'listening') { clearTimeout(t); res(j as T); } } catch { /* partial */ } }
    });
  });
}
