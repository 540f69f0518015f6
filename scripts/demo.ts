// The local demo (`npm run demo`): a real mpyc-relay process on loopback and two parties,
// alice (relay over UDP) and bob (relay over WebSocket). Each learns its public address by
// STUN, registers with the relay by proving its key, completes an end-to-end Noise IK
// handshake with the other THROUGH the relay, and exchanges encrypted messages the relay
// can only forward. Everything binds 127.0.0.1 on ephemeral ports; all of it is torn down
// on exit. (The full agent — MPyC port layout, streams, hole punching — is issue #5.)
import { spawn, type ChildProcess } from 'node:child_process';
import * as dgram from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { RelayClient, relayWsUrl } from '../src/relay/index.js';
import { stunBindingOverSocket } from '../src/stun/client.js';
import { HandshakeState, PROTOCOL_NAME, generateKeyPair, type CipherState, type KeyPair } from '../src/noise/index.js';

const distRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const relayCli = join(distRoot, 'src/relay/cli.js');
const PROLOGUE = new TextEncoder().encode('mpyc-agent demo v1');
const b64 = (k: Uint8Array): string => Buffer.from(k).toString('base64');
const say = (who: string, msg: string): void => { console.log(`${(performance.now() / 1000).toFixed(3).padStart(7)}s  ${who.padEnd(6)} ${msg}`); };

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    p.then((v) => { clearTimeout(t); resolve(v); }, (e: unknown) => { clearTimeout(t); reject(e instanceof Error ? e : new Error(String(e))); });
  });
}

async function startRelay(dir: string): Promise<{ child: ChildProcess; key: Uint8Array; udpPort: number; httpPort: number; address: string }> {
  const keyFile = join(dir, 'relay.key');
  const keygen = spawn(process.execPath, [relayCli, 'keygen', '--out', keyFile], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => keygen.on('exit', (c) => (c === 0 ? resolve() : reject(new Error(`relay keygen exited ${c}`)))));
  const child = spawn(process.execPath, [relayCli, 'serve', '--key', keyFile, '--udp', '127.0.0.1:0', '--http', '127.0.0.1:0', '--log-level', 'info'],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  const listening = await withTimeout(new Promise<{ udpPort: number; httpPort: number; relayAddress: string }>((resolve, reject) => {
    child.on('exit', (c) => reject(new Error(`relay exited early (code ${c})`)));
    lines.on('line', (line) => {
      try {
        const rec = JSON.parse(line) as { msg?: string; udpPort?: number; httpPort?: number; relayAddress?: string };
        if (rec.msg === 'listening' && rec.udpPort && rec.httpPort && rec.relayAddress) resolve(rec as never);
      } catch { /* not JSON */ }
    });
  }), 10_000, 'relay to listen');
  const key = new Uint8Array(Buffer.from(listening.relayAddress.split('@')[0]!, 'base64'));
  return { child, key, udpPort: listening.udpPort, httpPort: listening.httpPort, address: listening.relayAddress };
}

interface Party { name: string; key: KeyPair; client: RelayClient; socket?: dgram.Socket; inbox: Array<{ from: string; data: Uint8Array }>; wake?: () => void }

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'mpyc-demo-'));
  const cleanups: Array<() => void> = [() => rmSync(dir, { recursive: true, force: true })];
  const cleanup = (): void => { while (cleanups.length) { try { cleanups.pop()!(); } catch { /* best effort */ } } };
  process.on('SIGINT', () => { cleanup(); process.exit(130); });
  try {
    const relay = await startRelay(dir);
    cleanups.push(() => relay.child.kill('SIGTERM'));
    say('relay', `listening: ${relay.address}`);

    const mk = async (name: string, transport: 'udp' | 'ws'): Promise<Party> => {
      const key = generateKeyPair();
      let socket: dgram.Socket | undefined;
      if (transport === 'udp') {
        socket = dgram.createSocket('udp4');
        await new Promise<void>((r) => socket!.bind(0, '127.0.0.1', () => r()));
        const reflexive = await stunBindingOverSocket(socket, '127.0.0.1', relay.udpPort);
        say(name, `STUN says my address is ${reflexive.address}:${reflexive.port}`);
      }
      const client = new RelayClient({
        relayKey: relay.key, keyPair: key, transport,
        sendUdp: socket ? (f) => socket!.send(f, relay.udpPort, '127.0.0.1') : undefined,
        wsUrl: relayWsUrl('127.0.0.1', relay.httpPort),
      });
      const party: Party = { name, key, client, socket, inbox: [] };
      socket?.on('message', (m) => { if (m[0]! >= 0x20 && m[0]! <= 0x3f) client.handleDatagram(m); });
      client.on('packet', (from, payload) => { party.inbox.push({ from, data: new Uint8Array(payload) }); party.wake?.(); });
      cleanups.push(() => { client.close(); socket?.close(); });
      const t0 = performance.now();
      client.start();
      await withTimeout(new Promise<void>((resolve) => {
        const check = (): void => { if (client.state === 'registered') resolve(); };
        client.on('state', check);
        check();
      }), 10_000, `${name} to register`);
      say(name, `registered with the relay over ${client.transport} in ${(performance.now() - t0).toFixed(1)} ms as ${b64(key.publicKey)}`);
      return party;
    };
    const next = (p: Party): Promise<{ from: string; data: Uint8Array }> => withTimeout(new Promise((resolve) => {
      const take = (): void => { const m = p.inbox.shift(); if (m) { p.wake = undefined; resolve(m); } else p.wake = take; };
      take();
    }), 5000, `${p.name} to receive`);

    const alice = await mk('alice', 'udp');
    const bob = await mk('bob', 'ws');

    // End-to-end Noise IK: alice knows bob's public key; the relay only forwards bytes.
    const t0 = performance.now();
    const hsA = new HandshakeState({ protocolName: PROTOCOL_NAME, initiator: true, prologue: PROLOGUE, staticKey: alice.key, remoteStaticKey: bob.key.publicKey });
    const hsB = new HandshakeState({ protocolName: PROTOCOL_NAME, initiator: false, prologue: PROLOGUE, staticKey: bob.key });
    alice.client.send(b64(bob.key.publicKey), hsA.writeMessage(new Uint8Array(0)));
    const m1 = await next(bob);
    hsB.readMessage(m1.data);
    if (b64(hsB.remoteStaticKey()!) !== m1.from) throw new Error('initiator key does not match the relay-authenticated sender');
    say('bob', `handshake initiation from ${m1.from} authenticated (${m1.data.length} bytes via relay)`);
    bob.client.send(m1.from, hsB.writeMessage(new Uint8Array(0)));
    hsA.readMessage((await next(alice)).data);
    say('alice', `handshake complete in ${(performance.now() - t0).toFixed(1)} ms; handshake hash ${Buffer.from(hsA.handshakeHash()).toString('hex').slice(0, 16)}…`);

    const a = hsA.split();
    const b = hsB.split();
    const exchange = async (from: Party, fromCs: { send: CipherState }, to: Party, toCs: { receive: CipherState }, text: string): Promise<void> => {
      from.client.send(b64(to.key.publicKey), fromCs.send.encryptWithAd(new Uint8Array(0), new TextEncoder().encode(text)));
      const got = await next(to);
      const plain = new TextDecoder().decode(toCs.receive.decryptWithAd(new Uint8Array(0), got.data));
      if (plain !== text) throw new Error(`message corrupted: ${plain}`);
      say(to.name, `received "${plain}" (${got.data.length} encrypted bytes)`);
    };
    for (let round = 1; round <= 3; round++) {
      await exchange(alice, a, bob, b, `round ${round}: share from alice`);
      await exchange(bob, b, alice, a, `round ${round}: share from bob`);
    }
    console.log('demo: OK — STUN, registration (UDP and WebSocket), end-to-end Noise IK and 6 encrypted messages through the relay');
  } finally {
    cleanup();
  }
}

main().catch((err: unknown) => {
  console.error(`demo: FAILED: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
