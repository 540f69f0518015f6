// Crypto bench for the Noise layer (`node dist/bench/crypto.js [--quick]`):
// full IK handshakes per second, and ChaCha20-Poly1305 encrypt+decrypt throughput for
// 64-byte and 1200-byte payloads, @noble/ciphers against node:crypto (OpenSSL), measured
// interleaved (A B A B …) so machine drift hits both alike; medians are reported.
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { HandshakeState, PROTOCOL_NAME, generateKeyPair } from '../src/noise/index.js';
import { aeadNonce } from '../src/noise/crypto.js';

const quick = process.argv.includes('--quick');
const ROUNDS = quick ? 3 : 7;
const SLICE_MS = quick ? 150 : 400;

type Aead = { name: string; seal(key: Uint8Array, n: bigint, pt: Uint8Array): Uint8Array; open(key: Uint8Array, n: bigint, ct: Uint8Array): Uint8Array };
const empty = new Uint8Array(0);
const noble: Aead = {
  name: '@noble/ciphers',
  seal: (k, n, pt) => chacha20poly1305(k, aeadNonce(n), empty).encrypt(pt),
  open: (k, n, ct) => chacha20poly1305(k, aeadNonce(n), empty).decrypt(ct),
};
const openssl: Aead = {
  name: 'node:crypto',
  seal: (k, n, pt) => {
    const c = createCipheriv('chacha20-poly1305', k, aeadNonce(n), { authTagLength: 16 });
    const body = c.update(pt);
    c.final();
    return Buffer.concat([body, c.getAuthTag()]);
  },
  open: (k, n, ct) => {
    const d = createDecipheriv('chacha20-poly1305', k, aeadNonce(n), { authTagLength: 16 });
    d.setAuthTag(ct.subarray(ct.length - 16));
    const body = d.update(ct.subarray(0, ct.length - 16));
    d.final();
    return body;
  },
};

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
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]!; };

const alice = generateKeyPair();
const bob = generateKeyPair();
const prologue = new TextEncoder().encode('bench');
function handshake(): void {
  const i = new HandshakeState({ protocolName: PROTOCOL_NAME, initiator: true, prologue, staticKey: alice, remoteStaticKey: bob.publicKey });
  const r = new HandshakeState({ protocolName: PROTOCOL_NAME, initiator: false, prologue, staticKey: bob });
  r.readMessage(i.writeMessage(empty));
  i.readMessage(r.writeMessage(empty));
}

const key = new Uint8Array(32).fill(7);
const results: Record<string, number[]> = {};
const add = (k: string, v: number): void => { (results[k] ??= []).push(v); };
for (let round = 0; round < ROUNDS; round++) {
  add('handshake', rate(handshake, SLICE_MS));
  for (const size of [64, 1200]) {
    const pt = new Uint8Array(size).fill(1);
    for (const aead of round % 2 ? [openssl, noble] : [noble, openssl]) {
      let n = 0n;
      const ops = rate(() => { const ct = aead.seal(key, n, pt); aead.open(key, n, ct); n++; }, SLICE_MS);
      add(`${aead.name} ${size}`, ops);
    }
  }
}

console.log(`# Noise crypto (${ROUNDS} interleaved rounds, median; node ${process.version})\n`);
console.log(`| measurement | result |\n|---|---|`);
console.log(`| full IK handshake (both sides, 1 process) | ${median(results.handshake!).toFixed(0)} handshakes/s |`);
for (const size of [64, 1200]) {
  const nb = median(results[`@noble/ciphers ${size}`]!);
  const os = median(results[`node:crypto ${size}`]!);
  for (const [name, ops] of [['@noble/ciphers', nb], ['node:crypto', os]] as const) {
    console.log(`| ${size} B encrypt+decrypt, ${name} | ${(ops / 1000).toFixed(1)}k ops/s = ${(ops * size * 8 / 1e6).toFixed(0)} Mbit/s |`);
  }
  console.log(`| ${size} B: node:crypto / noble | ${(os / nb).toFixed(2)}× |`);
}
