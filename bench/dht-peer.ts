// Benchmark endpoints for the in-process peers: the same ping-pong and bulk workloads as
// bench/peer.ts (lib/workloads.ts), carried by Holepunch's transports inside the two
// endpoint processes themselves (no proxy process):
//   --mode hyperdht  a hyperdht connection (Noise handshake via the local testnet, then
//                    libsodium secretstream over a udx stream)
//   --mode udx       a bare udx-native stream (reliable, congestion-controlled, no crypto)
//                    between two fixed ports: no handshake, both ends are pre-connected
// Usage:
//   server --mode hyperdht --bootstrap H:P [--firewalled false]   prints {"listening":KEYHEX}
//   server --mode udx --host H --port S --peer-host H2 --peer-port C  prints {"listening":S}
//   ping|bulk --mode hyperdht --bootstrap H:P --key KEYHEX ...      (--n --warm --size | --bytes --seconds)
//   ping|bulk --mode udx --host H2 --port C --peer-host H --peer-port S ...
// The server also prints {"firstByteAt":t}. A client that is not connected within
// --timeout seconds exits with code 3 and "connection stalled" (the bench retries the round).
import { parseArgs } from 'node:util';
import { nowAbs } from './lib/proc.js';
import { HyperDHT, parseBootstrap, requireCjs } from './lib/holepunch.js';
import { STALL_EXIT_CODE, STALL_MESSAGE, bulkClient, pingClient, serveConnection, stallWatchdog, type ByteStream } from './lib/workloads.js';

interface UdxSocket { bind(port: number, host: string): void; close(): Promise<void> }
interface UdxStream extends ByteStream { connect(socket: UdxSocket, remoteId: number, port: number, host: string): void }
interface Udx { createSocket(): UdxSocket; createStream(id: number): UdxStream }
const UDX = requireCjs('udx-native') as new () => Udx;

/** udx stream ids: the ping connection is server 1 ↔ client 2, the bulk one server 3 ↔ client 4 */
const UDX_IDS = { ping: { server: 1, client: 2 }, bulk: { server: 3, client: 4 } } as const;

const out = (o: unknown): void => { process.stdout.write(JSON.stringify(o) + '\n'); };

const { positionals, values: v } = parseArgs({ allowPositionals: true, options: {
  mode: { type: 'string' }, bootstrap: { type: 'string' }, firewalled: { type: 'string', default: 'true' }, key: { type: 'string' },
  host: { type: 'string', default: '127.0.0.1' }, port: { type: 'string' }, 'peer-host': { type: 'string', default: '127.0.0.1' }, 'peer-port': { type: 'string' },
  n: { type: 'string' }, warm: { type: 'string', default: '0' }, size: { type: 'string', default: '64' }, bytes: { type: 'string' }, seconds: { type: 'string', default: '10' },
  timeout: { type: 'string', default: '20' },
} });
const kind = positionals[0];
let firstSeen = false;
const onFirstByte = (): void => { if (!firstSeen) { firstSeen = true; out({ firstByteAt: nowAbs() }); } };

async function server(): Promise<void> {
  if (v.mode === 'hyperdht') {
    const node = new HyperDHT({ bootstrap: parseBootstrap(v.bootstrap), firewalled: v.firewalled !== 'false' });
    const kp = HyperDHT.keyPair();
    const srv = node.createServer({}, (s) => serveConnection(s, onFirstByte));
    await srv.listen(kp);
    out({ listening: kp.publicKey.toString('hex') });
    process.once('SIGTERM', () => { setTimeout(() => process.exit(0), 1000).unref(); void node.destroy().finally(() => process.exit(0)); });
    return;
  }
  const udx = new UDX();
  const sock = udx.createSocket();
  sock.bind(Number(v.port), v.host!);
  for (const ids of [UDX_IDS.ping, UDX_IDS.bulk]) {
    const s = udx.createStream(ids.server);
    s.connect(sock, ids.client, Number(v['peer-port']), v['peer-host']!);
    serveConnection(s, onFirstByte);
  }
  out({ listening: Number(v.port) });
  process.once('SIGTERM', () => process.exit(0));
}

async function client(): Promise<void> {
  let s: ByteStream;
  let cleanup: () => Promise<void>;
  // a connection that never opens is a stall too
  const opening = setTimeout(() => { process.stderr.write(`dht-peer: ${STALL_MESSAGE} (${v.mode}: not open within ${v.timeout} s)\n`); process.exit(STALL_EXIT_CODE); }, Number(v.timeout) * 1000);
  if (v.mode === 'hyperdht') {
    const node = new HyperDHT({ bootstrap: parseBootstrap(v.bootstrap) });
    const c = node.connect(Buffer.from(v.key!, 'hex'));
    await new Promise<void>((resolve, reject) => { c.once('open', resolve); c.on('error', reject); });
    s = c;
    cleanup = () => node.destroy();
  } else {
    const udx = new UDX();
    const sock = udx.createSocket();
    sock.bind(Number(v.port), v.host!);
    const ids = kind === 'bulk' ? UDX_IDS.bulk : UDX_IDS.ping;
    const us = udx.createStream(ids.client);
    us.connect(sock, ids.server, Number(v['peer-port']), v['peer-host']!);
    s = us;
    cleanup = () => sock.close();
  }
  clearTimeout(opening);
  const disarm = stallWatchdog(s, Number(v.timeout) + (kind === 'bulk' ? Number(v.seconds) : 0), `dht-peer ${v.mode} ${kind}`);
  if (kind === 'bulk') out({ result: await bulkClient(s, Number(v.bytes), Number(v.seconds)) });
  else {
    const samples = await pingClient(s, Number(v.size), Number(v.warm), Number(v.n));
    out({ result: { samplesUs: samples.map((x) => Math.round(x * 10) / 10) } });
  }
  disarm();
  s.destroy();
  await Promise.race([cleanup(), new Promise((r) => setTimeout(r, 1000))]);
  process.exit(0);
}

(kind === 'server' ? server() : kind === 'ping' || kind === 'bulk' ? client() : Promise.reject(new Error(`unknown mode ${kind}`)))
  .catch((err: unknown) => {
    process.stderr.write(`dht-peer: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(1);
  });
