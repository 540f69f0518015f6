// Crypto bench for the Noise and session layers (`npm run bench:crypto [-- --quick]`).
//
// 1. Full Noise IK handshakes per second (both sides in one process).
// 2. One transport packet sealed and opened (seal + open = one "packet"), three ways, for
//    64 B, 1200 B and 16 KB payloads, measured interleaved (A B C, then C B A, …) so
//    machine drift hits all alike; medians over the rounds:
//      before    the path before sodium-native, rebuilt here as it was: a node:crypto
//                cipher object per packet, BigInt counter, a new message buffer and copy
//                on seal, decode + a new plaintext buffer on open
//      copying   SessionKeys.seal + openInPlace: what SessionManager.send() and receive()
//                do (libsodium; one copy of the plaintext into the message on the way out)
//      in place  SessionKeys.sealInPlace + openInPlace into a buffer with headroom: what
//                SessionManager.sendInPlace() and receive() do
//    and a forged packet's cost (a wrong tag on a 1200 B packet: what a flood of forgeries
//    with a valid index costs the receiver).
// 3. Allocation per packet for each path, from V8's GC profiler: JS-heap bytes allocated
//    (the sum over the collections of heap-before minus the previous heap-after) and
//    young-generation collections per 100k packets (which also counts collections that
//    off-heap Buffers trigger).
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { GCProfiler } from 'node:v8';
import { CipherState, HandshakeState, PROTOCOL_NAME, generateKeyPair } from '../src/noise/index.js';
import { SESSION_HEADROOM, SESSION_TAILROOM, SessionKeys } from '../src/session/session-keys.js';
import { TRANSPORT_HEADER_LEN } from '../src/session/wire.js';
import { median } from './lib/stats.js';

const quick = process.argv.includes('--quick');
const ROUNDS = quick ? 3 : 7;
const SLICE_MS = quick ? 150 : 400;
const SIZES = [64, 1200, 16_384];

/** Runs fn repeatedly for about ms milliseconds; returns operations per second. */
function rate(fn: () => void, ms: number): number {
  let ops = 0;
  const t0 = process.hrtime.bigint();
  const end = t0 + BigInt(ms) * 1_000_000n;
  let now = t0;
  while (now < end) {
    for (let i = 0; i < 16; i++) fn();
    ops += 16;
    now = process.hrtime.bigint();
  }
  return ops / (Number(now - t0) / 1e9);
}

const alice = generateKeyPair();
const bob = generateKeyPair();
const prologue = new TextEncoder().encode('bench');
const empty = new Uint8Array(0);
function handshake(): void {
  const i = new HandshakeState({ protocolName: PROTOCOL_NAME, initiator: true, prologue, staticKey: alice, remoteStaticKey: bob.publicKey });
  const r = new HandshakeState({ protocolName: PROTOCOL_NAME, initiator: false, prologue, staticKey: bob });
  r.readMessage(i.writeMessage(empty));
  i.readMessage(r.writeMessage(empty));
  i.destroy();
  r.destroy();
}

// ---------------------------------------------------------------- the three packet paths

interface PacketPath {
  name: string;
  /** seals one packet of `size` bytes and opens it; returns the opened length */
  roundTrip(): number;
  /** opens a forged packet (must fail); the two libsodium paths share one receive path, measured once */
  forged?: () => void;
}

const keyA = new Uint8Array(32).fill(3);
const keyB = new Uint8Array(32).fill(4);

/** The path before this change: node:crypto, a cipher object per packet, BigInt counters. */
function beforePath(size: number): PacketPath {
  let counter = 0n;
  const payload = new Uint8Array(size).fill(1);
  const nonceOf = (n: bigint): Uint8Array => {
    const nonce = new Uint8Array(12);
    new DataView(nonce.buffer).setBigUint64(4, n, true);
    return nonce;
  };
  const seal = (pt: Uint8Array): Uint8Array => {
    const n = counter++;
    const c = createCipheriv('chacha20-poly1305', keyA, nonceOf(n), { authTagLength: 16 });
    const body = c.update(pt);
    c.final();
    const ct = new Uint8Array(body.length + 16);
    ct.set(body, 0);
    ct.set(c.getAuthTag(), body.length);
    const out = new Uint8Array(TRANSPORT_HEADER_LEN + ct.length);
    out.set(ct, TRANSPORT_HEADER_LEN);
    out[0] = 0x14;
    const dv = new DataView(out.buffer);
    dv.setUint32(4, 7, true);
    dv.setBigUint64(8, n, true);
    return out;
  };
  const open = (datagram: Uint8Array): Uint8Array | null => {
    const dv = new DataView(datagram.buffer, datagram.byteOffset, datagram.byteLength);
    if (datagram[0] !== 0x14 || dv.getUint32(4, true) !== 7) return null;
    const ct = datagram.subarray(TRANSPORT_HEADER_LEN);
    try {
      const dc = createDecipheriv('chacha20-poly1305', keyA, nonceOf(dv.getBigUint64(8, true)), { authTagLength: 16 });
      dc.setAuthTag(ct.subarray(ct.length - 16));
      const body = dc.update(ct.subarray(0, ct.length - 16));
      dc.final();
      return new Uint8Array(body.buffer, body.byteOffset, body.length);
    } catch {
      return null;
    }
  };
  const forgedPacket = seal(payload);
  forgedPacket[forgedPacket.length - 1]! ^= 1;
  return {
    name: 'before (node:crypto cipher per packet)',
    roundTrip: () => open(seal(payload))!.length,
    forged: () => { if (open(forgedPacket)) throw new Error('forgery opened'); },
  };
}

function keysPair(): { tx: SessionKeys; rx: SessionKeys } {
  return {
    tx: new SessionKeys(new CipherState(keyA), new CipherState(keyB), 1, 2, true, 0),
    rx: new SessionKeys(new CipherState(keyB), new CipherState(keyA), 2, 1, false, 0),
  };
}

/**
 * A forged packet (last tag byte flipped) and a receiver of its own: the forgery's counter
 * is one that receiver never accepted, so every attempt reaches the AEAD (a forgery never
 * moves the window, so it stays that way).
 */
function forgery(size: number): { rx: SessionKeys; packet: Uint8Array } {
  const { tx, rx } = keysPair();
  const packet = tx.seal(new Uint8Array(size));
  packet[packet.length - 1]! ^= 1;
  return { rx, packet };
}

function copyingPath(size: number): PacketPath {
  const { tx, rx } = keysPair();
  const payload = new Uint8Array(size).fill(1);
  return {
    name: 'copying (seal + openInPlace)',
    roundTrip: () => {
      const opened = rx.openInPlace(tx.seal(payload));
      if (typeof opened === 'string') throw new Error(opened);
      return opened.length;
    },
  };
}

function inPlacePath(size: number): PacketPath {
  const { tx, rx } = keysPair();
  // one packet buffer with headroom and tailroom, reused as a transport layer would
  const buf = new Uint8Array(SESSION_HEADROOM + size + SESSION_TAILROOM);
  const plaintext = buf.subarray(SESSION_HEADROOM, SESSION_HEADROOM + size);
  return {
    name: 'in place (sealInPlace + openInPlace)',
    roundTrip: () => {
      plaintext.fill(1);
      const opened = rx.openInPlace(tx.sealInPlace(plaintext));
      if (typeof opened === 'string') throw new Error(opened);
      return opened.length;
    },
    forged: inPlaceForgery(size),
  };
}

/** openInPlace of a forgery. */
function inPlaceForgery(size: number): () => void {
  const forged = forgery(size);
  const attempt = new Uint8Array(forged.packet.length);
  return () => {
    attempt.set(forged.packet); // a failed openInPlace zeroes the packet: copy it afresh
    if (forged.rx.openInPlace(attempt) !== 'decrypt_failed') throw new Error('forgery not refused by the AEAD');
  };
}

const makers = [beforePath, copyingPath, inPlacePath];

// ---------------------------------------------------------------- allocation

function allocationPerPacket(path: PacketPath, packets: number): { heapBytes: number; scavengesPer100k: number } {
  const profiler = new GCProfiler();
  profiler.start();
  const heapAtStart = process.memoryUsage().heapUsed;
  for (let i = 0; i < packets; i++) path.roundTrip();
  const heapAtEnd = process.memoryUsage().heapUsed;
  const stats = profiler.stop()?.statistics ?? [];
  let allocated = 0;
  let last = heapAtStart;
  let scavenges = 0;
  for (const s of stats) {
    allocated += s.beforeGC.heapStatistics.usedHeapSize - last;
    last = s.afterGC.heapStatistics.usedHeapSize;
    if (s.gcType === 'Scavenge' || s.gcType === 'MinorMarkSweep') scavenges++;
  }
  allocated += heapAtEnd - last;
  return { heapBytes: allocated / packets, scavengesPer100k: (scavenges * 100_000) / packets };
}

// ---------------------------------------------------------------- run

const results = new Map<string, number[]>();
const add = (k: string, v: number): void => { const a = results.get(k) ?? []; a.push(v); results.set(k, a); };
const paths = new Map(SIZES.map((size) => [size, makers.map((m) => m(size))]));
for (const list of paths.values()) for (const p of list) p.roundTrip(); // warm up every path

for (let round = 0; round < ROUNDS; round++) {
  add('handshake', rate(handshake, SLICE_MS));
  for (const size of SIZES) {
    const list = paths.get(size)!;
    for (const p of round % 2 ? [...list].reverse() : list) {
      add(`${p.name} ${size}`, rate(() => p.roundTrip(), SLICE_MS));
      if (size === 1200 && p.forged) add(`${p.name} forged`, rate(p.forged, SLICE_MS / 2));
    }
  }
}

const fmt = (ops: number): string => (ops >= 1e5 ? `${(ops / 1000).toFixed(0)}k` : `${(ops / 1000).toFixed(1)}k`);
console.log(`# Noise and session crypto (${ROUNDS} interleaved rounds, median; node ${process.version})\n`);
console.log(`full IK handshake (both sides, one process): ${median(results.get('handshake')!).toFixed(0)} handshakes/s\n`);
console.log('| payload | path | packets/s (seal + open) | Mbit/s | vs before | heap B/packet | scavenges / 100k packets |');
console.log('|---:|---|---:|---:|---:|---:|---:|');
for (const size of SIZES) {
  const list = paths.get(size)!;
  const before = median(results.get(`${list[0]!.name} ${size}`)!);
  for (const p of list) {
    const ops = median(results.get(`${p.name} ${size}`)!);
    const alloc = allocationPerPacket(p, size > 2000 ? 20_000 : 100_000);
    console.log(`| ${size} B | ${p.name} | ${fmt(ops)} | ${(ops * size * 8 / 1e6).toFixed(0)} | ${(ops / before).toFixed(2)}× | ${alloc.heapBytes.toFixed(0)} | ${alloc.scavengesPer100k.toFixed(1)} |`);
  }
}
console.log('\n| forged 1200 B packet (wrong tag), receiver cost | opens refused/s |\n|---|---:|');
for (const p of paths.get(1200)!) if (p.forged) console.log(`| ${p.name} | ${fmt(median(results.get(`${p.name} forged`)!))} |`);
