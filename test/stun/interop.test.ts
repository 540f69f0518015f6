// Interop with third-party STUN implementations: coturn (turnutils_stunclient and
// turnserver --stun-only) and the `stun` npm package (test-only devDependency).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as dgram from 'node:dgram';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { stunBindingOverSocket } from '../../src/stun/client.js';
import { RelayServer } from '../../src/relay/server.js';
import { generateKeyPair } from '../../src/noise/index.js';

const require = createRequire(import.meta.url);
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const stun: any = require('stun');

function haveBinary(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`]).status === 0;
}

/** coturn must be present in CI / as root: fail loudly instead of skipping. */
function requireCoturn(): void {
  for (const b of ['turnserver', 'turnutils_stunclient']) {
    if (!haveBinary(b)) throw new Error(`${b} not found: install coturn (apt-get install coturn) — the STUN interop tests need it`);
  }
}

async function udpSocket(): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  return s;
}

async function freeUdpPort(): Promise<number> {
  const s = await udpSocket();
  const p = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

describe('STUN interop: mpyc-relay as server', () => {
  let relay: RelayServer;
  let port = 0;
  beforeAll(async () => {
    relay = new RelayServer({ keyPair: generateKeyPair(), udp: { host: '127.0.0.1', port: 0 } });
    port = (await relay.start()).udpPort;
  });
  afterAll(async () => { await relay.stop(false); });

  it('coturn turnutils_stunclient gets the right reflexive address', async () => {
    requireCoturn();
    const before = relay.counters.stunRequests;
    // async spawn: the relay answers from this same process, so the event loop must run
    const out = await new Promise<string>((resolve) => {
      const p = spawn('turnutils_stunclient', ['-p', String(port), '127.0.0.1'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let text = '';
      p.stdout.on('data', (d) => { text += String(d); });
      p.stderr.on('data', (d) => { text += String(d); });
      const t = setTimeout(() => p.kill('SIGKILL'), 15_000);
      p.on('close', () => { clearTimeout(t); resolve(text); });
    });
    const m = /UDP reflexive addr: (\d+\.\d+\.\d+\.\d+):(\d+)/.exec(out);
    expect(m, out).not.toBeNull();
    expect(m![1]).toBe('127.0.0.1');
    expect(Number(m![2])).toBeGreaterThan(0);
    expect(relay.counters.stunRequests).toBeGreaterThan(before);
  });

  it('the stun npm package (client) gets our address', async () => {
    const s = await udpSocket();
    try {
      const res = await stun.request(`127.0.0.1:${port}`, { socket: s, timeout: 200, retries: 3 });
      const a = res.getXorAddress();
      expect(a.address).toBe('127.0.0.1');
      expect(a.port).toBe(s.address().port);
    } finally { s.close(); }
  });

  it('our client gets our own server right', async () => {
    const s = await udpSocket();
    try {
      const a = await stunBindingOverSocket(s, '127.0.0.1', port);
      expect(a).toEqual({ family: 'IPv4', address: '127.0.0.1', port: s.address().port });
    } finally { s.close(); }
  });
});

describe('STUN interop: our client against third-party servers', () => {
  let turn: ChildProcess | undefined;
  let turnPort = 0;
  let turnLog = '';
  beforeAll(async () => {
    requireCoturn();
    turnPort = await freeUdpPort();
    turn = spawn('turnserver', [
      '-n', '--stun-only', '--no-cli', '--no-tls', '--no-dtls', '--log-file', 'stdout', '--simple-log',
      '-L', '127.0.0.1', '--listening-port', String(turnPort), '--no-rfc5780',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    turn.stdout!.on('data', (d) => { turnLog += String(d); });
    turn.stderr!.on('data', (d) => { turnLog += String(d); });
    // wait until it answers (poll with our client, bounded)
    const t0 = Date.now();
    for (;;) {
      const s = await udpSocket();
      try { await stunBindingOverSocket(s, '127.0.0.1', turnPort, { rtoMs: 100, maxTransmissions: 2 }); break; } catch {
        if (Date.now() - t0 > 10_000) throw new Error(`turnserver did not answer on ${turnPort}:\n${turnLog}`);
      } finally { s.close(); }
    }
  });
  afterAll(() => { turn?.kill('SIGKILL'); });

  it('coturn turnserver --stun-only reports our socket address', async () => {
    const s = await udpSocket();
    try {
      const a = await stunBindingOverSocket(s, '127.0.0.1', turnPort);
      expect(a).toEqual({ family: 'IPv4', address: '127.0.0.1', port: s.address().port });
    } finally { s.close(); }
  });

  it('the stun npm package (server) reports our socket address', async () => {
    const srvSock = await udpSocket();
    const server = stun.createServer({ type: 'udp4', socket: srvSock });
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    server.on('bindingRequest', (req: any, rinfo: dgram.RemoteInfo) => {
      const msg = stun.createMessage(stun.constants.STUN_BINDING_RESPONSE, req.transactionId);
      msg.addXorAddress(rinfo.address, rinfo.port);
      msg.addFingerprint();
      server.send(msg, rinfo.port, rinfo.address);
    });
    const s = await udpSocket();
    try {
      const a = await stunBindingOverSocket(s, '127.0.0.1', srvSock.address().port);
      expect(a).toEqual({ family: 'IPv4', address: '127.0.0.1', port: s.address().port });
    } finally { s.close(); server.close(); try { srvSock.close(); } catch { /* closed */ } }
  });
});
