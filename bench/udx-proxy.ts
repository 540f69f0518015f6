// The udx-proxy bench system (issue 16, "How": a native transport under the agent's
// streams): the agent's architecture — one proxy process per party, MPyC's TCP connections
// on loopback on either side — with udx-native (libudx: reliable, congestion-controlled
// streams over UDP, in C) as the transport instead of our JavaScript one, and every chunk
// sealed with the agent's AEAD (lib/sealed-frames.ts). Pre-keyed: all proxies get one
// master key and derive a key per direction, so there is no handshake and what is measured
// is the data path. docs/native-transport.md has what it showed.
//
//   node udx-proxy.js --index K --key HEX64 --bind HOST:UDPPORT --local-base B
//                     --peer J=HOST:UDPPORT ...   (every other party)
// Like `mpyc-agent up --local-base B`: listens on 127.0.0.1:B+J for each peer J (MPyC party
// K dials party J there) and delivers each connection from peer J to 127.0.0.1:B+K (party
// K's MPyC listener), retrying that connect until the listener is up. Prints {"msg":"ready"}.
//
// Streams. udx streams are named by a 32-bit id at each end and need the remote's id to
// connect. Per peer a control stream (id CONTROL_ID + peer index) carries OPEN messages;
// the dialling proxy numbers its connections c = 1, 2, ... and uses stream id c, the
// accepting proxy id ACCEPTED_ID(dialler, c); connection id c also goes in the nonce.
//   control message (sealed like every frame): [0] OPEN = 1, [1..5) c, u32 LE
import { createServer, connect, type Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { hkdfSync } from 'node:crypto';
import { requireCjs } from './lib/holepunch.js';
import { FrameOpener, FrameSealer, MAX_FRAME_PLAINTEXT } from './lib/sealed-frames.js';

interface UdxSocket { bind(port: number, host: string): void; close(): Promise<void> }
interface UdxStream {
  write(b: Buffer): boolean; end(): void; destroy(err?: Error): void; pause(): void; resume(): void;
  connect(socket: UdxSocket, remoteId: number, port: number, host: string): void;
  on(ev: 'data', cb: (d: Buffer) => void): unknown; on(ev: 'end' | 'drain' | 'close', cb: () => void): unknown; on(ev: 'error', cb: (e: Error) => void): unknown;
}
interface Udx { createSocket(): UdxSocket; createStream(id: number, opts?: { framed?: boolean }): UdxStream }
const UDX = requireCjs('udx-native') as new () => Udx;

/** the parties a proxy can serve (bounds every index on the wire) */
const MAX_PARTIES = 16;
const CONTROL_ID = 0x7f000000;
/** connection numbers of one dialler: 1 ≤ c < 2^20 */
const MAX_CONNECTION = (1 << 20) - 1;
const ACCEPTED_ID = (dialler: number, c: number): number => ((dialler + 1) << 20) | c;
const OPEN = 1;
const OPEN_LEN = 5;
/** udx-native reads our u24-prefixed frames whole (lib/sealed-frames.ts) */
const FRAMED = { framed: true };
/** local connect retry: from 2 ms, doubling to MPyC's 100 ms, for at most 30 s */
const RETRY_FIRST_MS = 2, RETRY_MAX_MS = 100, RETRY_FOR_MS = 30_000;

const { values } = parseArgs({ options: {
  index: { type: 'string' }, key: { type: 'string' }, bind: { type: 'string' }, 'local-base': { type: 'string' },
  peer: { type: 'string', multiple: true, default: [] },
} });
const own = Number(values.index);
const master = Buffer.from(values.key ?? '', 'hex');
const localBase = Number(values['local-base']);
if (!(Number.isInteger(own) && own >= 0 && own < MAX_PARTIES) || master.length !== 32 || !(localBase > 0 && localBase + MAX_PARTIES < 65536)) {
  throw new Error('usage: --index K --key HEX64 --bind HOST:PORT --local-base B --peer J=HOST:PORT ...');
}
const hostPort = (s: string): { host: string; port: number } => { const i = s.lastIndexOf(':'); return { host: s.slice(0, i), port: Number(s.slice(i + 1)) }; };

/** the key of direction from → to, derived from the master key */
function directionKey(from: number, to: number): Buffer {
  return Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), `mpyc-bench udx-proxy ${from}>${to}`, 32));
}

const udx = new UDX();
const socket = udx.createSocket();
const bind = hostPort(values.bind!);
socket.bind(bind.port, bind.host);

/**
 * Carries one TCP connection over one udx stream, both directions sealed; each side pauses
 * while the other's write buffer is full. (That stops at the udx stream: udx-native keeps
 * receiving into a paused stream, so a stopped reader never slows the far sender —
 * docs/native-transport.md, test/bench/udx-proxy.test.ts.)
 */
function splice(tcp: Socket, stream: UdxStream, sealer: FrameSealer, opener: FrameOpener): void {
  tcp.setNoDelay(true);
  tcp.on('data', (d: Buffer) => {
    let ok = true;
    for (let off = 0; off < d.length; off += MAX_FRAME_PLAINTEXT) ok = stream.write(sealer.seal(d.subarray(off, off + MAX_FRAME_PLAINTEXT)));
    if (!ok) tcp.pause();
  });
  stream.on('drain', () => tcp.resume());
  stream.on('data', (d: Buffer) => {
    let ok = true;
    if (!opener.push(d, (plain) => { ok = tcp.write(plain); })) { stream.destroy(new Error('frame failed authentication')); return; }
    if (!ok) stream.pause();
  });
  tcp.on('drain', () => stream.resume());
  // half-close both ways (a bulk sender ends and then waits for the count); the udx stream
  // closes itself once both directions are ended and acknowledged
  tcp.on('end', () => stream.end());
  stream.on('end', () => tcp.end());
  tcp.on('error', () => stream.destroy());
  stream.on('error', () => tcp.destroy());
  stream.on('close', () => tcp.destroy());
}

interface Peer { index: number; host: string; port: number; control: UdxStream; controlSealer: FrameSealer; toKey: Buffer; fromKey: Buffer; accepted: Set<number> }
const peers = new Map<number, Peer>();
let nextConnection = 1;

function connectLocal(onSocket: (s: Socket) => void, onGiveUp: () => void): void {
  const deadline = Date.now() + RETRY_FOR_MS;
  let wait = RETRY_FIRST_MS;
  const attempt = (): void => {
    const s = connect({ host: '127.0.0.1', port: localBase + own, allowHalfOpen: true });
    s.once('connect', () => { s.removeAllListeners('error'); onSocket(s); });
    s.once('error', () => {
      s.destroy();
      if (Date.now() > deadline) { onGiveUp(); return; }
      setTimeout(attempt, wait);
      wait = Math.min(wait * 2, RETRY_MAX_MS);
    });
  };
  attempt();
}

/** OPEN c from peer p: the stream exists at once (so udx acknowledges), TCP data flows once MPyC accepts. */
function accept(p: Peer, c: number): void {
  if (!(c >= 1 && c <= MAX_CONNECTION) || p.accepted.has(c)) return;
  p.accepted.add(c);
  const stream = udx.createStream(ACCEPTED_ID(p.index, c), FRAMED);
  stream.connect(socket, c, p.port, p.host);
  stream.pause();
  connectLocal((tcp) => { splice(tcp, stream, new FrameSealer(p.toKey, c), new FrameOpener(p.fromKey, c)); stream.resume(); }, () => stream.destroy());
}

function dial(p: Peer, tcp: Socket): void {
  if (nextConnection > MAX_CONNECTION) { tcp.destroy(); return; }
  const c = nextConnection++;
  const stream = udx.createStream(c, FRAMED);
  stream.connect(socket, ACCEPTED_ID(own, c), p.port, p.host);
  const open = Buffer.alloc(OPEN_LEN);
  open[0] = OPEN;
  open.writeUInt32LE(c, 1);
  p.control.write(p.controlSealer.seal(open));
  splice(tcp, stream, new FrameSealer(p.toKey, c), new FrameOpener(p.fromKey, c));
}

const listening: Array<Promise<void>> = [];
for (const spec of values.peer!) {
  const eq = spec.indexOf('=');
  const index = Number(spec.slice(0, eq));
  if (!(Number.isInteger(index) && index >= 0 && index < MAX_PARTIES && index !== own)) throw new Error(`bad --peer ${spec}`);
  const { host, port } = hostPort(spec.slice(eq + 1));
  const control = udx.createStream(CONTROL_ID + index, FRAMED);
  control.connect(socket, CONTROL_ID + own, port, host);
  const toKey = directionKey(own, index), fromKey = directionKey(index, own);
  const p: Peer = { index, host, port, control, controlSealer: new FrameSealer(toKey, 0), toKey, fromKey, accepted: new Set() };
  const controlOpener = new FrameOpener(p.fromKey, 0);
  control.on('data', (d: Buffer) => {
    const ok = controlOpener.push(d, (m) => { if (m.length === OPEN_LEN && m[0] === OPEN) accept(p, m.readUInt32LE(1)); });
    if (!ok) control.destroy(new Error('control frame failed authentication'));
  });
  control.on('error', (e) => { process.stderr.write(`udx-proxy ${own}: control stream to ${index}: ${e.message}\n`); });
  peers.set(index, p);
  const srv = createServer({ allowHalfOpen: true }, (tcp) => dial(p, tcp));
  listening.push(new Promise((resolve, reject) => { srv.once('error', reject); srv.listen({ host: '127.0.0.1', port: localBase + index }, () => resolve()); }));
}
await Promise.all(listening);
process.stdout.write(JSON.stringify({ msg: 'ready' }) + '\n');
process.once('SIGTERM', () => process.exit(0));
