// The attacker of test/relay/attacks.test.ts, as its own process (so its load does not
// share the legitimate pair's event loop): `node dist/test/relay/attacker.js JSON`.
// Speaks raw relay frames (version 1 and 2 share HELLO, the cookie's offset and REGISTER),
// sends only to loopback, stops by itself after `seconds`, prints one JSON line of counts.
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import { HandshakeState, generateKeyPair } from '../../src/noise/index.js';
import {
  FRAME_CHALLENGE, FRAME_REGISTERED, FRAME_RESTARTING, NOISE_PROTOCOL, encodeAuthFrame, encodeHello,
  decodeRegisteredPayload, encodeRegister, encodeSend, registrationPrologue,
} from '../../src/relay/wire.js';

export interface AttackSpec {
  attack: 'spoof-control' | 'register-flood' | 'stranger-flood' | 'stun-amplify' | 'http-hold';
  relayUdpPort: number;
  relayHttpPort: number;
  relayKey: string;
  /** spoof-control: the victim agent's UDP port on 127.0.0.1; stranger-flood: victim key */
  victimPort?: number;
  victimKey?: string;
  seconds: number;
  /** packets per second the flood attacks send (default 20000: below what one relay core
   *  forwards, so the test measures the mechanisms, not a saturated socket) */
  pps?: number;
}

const RELAY = '127.0.0.1';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function bind(host: string): Promise<dgram.Socket> {
  const s = dgram.createSocket({ type: 'udp4', sendBufferSize: 1 << 20 });
  await new Promise<void>((r) => s.bind(0, host, () => r()));
  return s;
}

function next(s: dgram.Socket, type: number, ms = 2000): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const t = setTimeout(() => { s.off('message', on); resolve(undefined); }, ms);
    const on = (m: Buffer): void => { if (m[0] === type) { clearTimeout(t); s.off('message', on); resolve(m); } };
    s.on('message', on);
  });
}

async function cookie(s: dgram.Socket, port: number): Promise<Uint8Array | undefined> {
  const got = next(s, FRAME_CHALLENGE);
  s.send(encodeHello(), port, RELAY);
  const c = await got;
  return c && new Uint8Array(c.subarray(4, 28));
}

/** Deadline loop: bursts of `fn`, yielding between them; bounded by time. */
async function until(deadline: number, fn: () => void | Promise<void>): Promise<void> {
  while (performance.now() < deadline) { await fn(); await new Promise((r) => setImmediate(r)); }
}

/** Deadline loop sending `perBurst` packets per call of `fn`, paced to `pps`. */
async function paced(deadline: number, pps: number, perBurst: number, fn: () => void): Promise<void> {
  const t0 = performance.now();
  let sent = 0;
  while (performance.now() < deadline) {
    fn();
    sent += perBurst;
    const ahead = sent / pps * 1000 - (performance.now() - t0);
    if (ahead > 1) await sleep(ahead); else await new Promise((r) => setImmediate(r));
  }
}

async function run(a: AttackSpec): Promise<Record<string, number>> {
  let end = performance.now() + a.seconds * 1000;
  const out: Record<string, number> = {};
  if (a.attack !== 'stranger-flood') process.stdout.write(JSON.stringify({ ready: true }) + '\n');
  switch (a.attack) {
    case 'spoof-control': {
      // attack 4: frames "from the relay" at the victim (the test's demultiplexer passes
      // them on as if spoofed from the relay's address): version 1 RESTARTING and REJECTED
      // every 100 ms, and forged authenticated RESTARTING frames
      const s = await bind(RELAY);
      out.sent = 0;
      let n = 1;
      await until(end, async () => {
        s.send(Buffer.from([FRAME_RESTARTING, 0, 0, 0]), a.victimPort!, RELAY);
        s.send(Buffer.from([0x2b, 1, 0, 0]), a.victimPort!, RELAY);
        const f = encodeAuthFrame(FRAME_RESTARTING, n++, new Uint8Array(0));
        f.set(crypto.getRandomValues(new Uint8Array(16)), f.length - 16);
        s.send(f, a.victimPort!, RELAY);
        out.sent! += 3;
        await sleep(100);
      });
      s.close();
      break;
    }
    case 'register-flood': {
      // attack 5: one valid cookie reused with garbage handshakes as fast as possible, and a
      // fresh cookie every 50 REGISTERs
      const s = await bind('127.0.0.2');
      let c = await cookie(s, a.relayUdpPort);
      out.registers = 0;
      await until(end, async () => {
        if (!c) { c = await cookie(s, a.relayUdpPort); return; }
        const garbage = encodeRegister(c, crypto.getRandomValues(new Uint8Array(96)));
        for (let i = 0; i < 50; i++) s.send(garbage, a.relayUdpPort, RELAY);
        out.registers! += 50;
        c = await cookie(s, a.relayUdpPort);
      });
      s.close();
      break;
    }
    case 'stranger-flood': {
      // attack 6: 50 freshly registered keys flood one victim key
      const relayKey = new Uint8Array(Buffer.from(a.relayKey, 'base64'));
      const socks: dgram.Socket[] = [];
      const frames: Uint8Array[] = [];
      const victim = new Uint8Array(Buffer.from(a.victimKey!, 'base64'));
      for (let i = 0; i < 50; i++) {
        const s = await bind(`127.0.1.${1 + (i % 5)}`);
        const c = await cookie(s, a.relayUdpPort);
        if (!c) continue;
        const hs = new HandshakeState({ protocolName: NOISE_PROTOCOL, initiator: true, prologue: registrationPrologue(c), staticKey: generateKeyPair(), remoteStaticKey: relayKey });
        const got = next(s, FRAME_REGISTERED);
        s.send(encodeRegister(c, hs.writeMessage(new Uint8Array(0))), a.relayUdpPort, RELAY);
        const reg = await got;
        // each stranger is a real registration: it knows its own registration token
        const token = reg && decodeRegisteredPayload(hs.readMessage(reg.subarray(4)))?.token;
        hs.destroy();
        if (token) { socks.push(s); frames.push(encodeSend(token, victim, new Uint8Array(1200))); } else s.close();
      }
      out.registered = socks.length;
      process.stdout.write(JSON.stringify({ ready: true }) + '\n');
      end = performance.now() + a.seconds * 1000;
      out.sent = 0;
      await paced(end, a.pps ?? 20_000, socks.length, () => { socks.forEach((s, i) => { s.send(frames[i]!, a.relayUdpPort, RELAY); out.sent!++; }); });
      for (const s of socks) s.close();
      break;
    }
    case 'stun-amplify': {
      // attack 9: 24-byte Binding requests with an unknown comprehension-required
      // attribute, from 20 source addresses; count bytes back
      const socks = await Promise.all(Array.from({ length: 20 }, (_, i) => bind(`127.0.2.${1 + i}`)));
      out.bytesIn = 0; out.bytesOut = 0; out.answers = 0; out.largest = 0;
      for (const s of socks) s.on('message', (m) => { out.bytesIn! += m.length; out.answers!++; out.largest = Math.max(out.largest!, m.length); });
      await paced(end, a.pps ?? 20_000, socks.length, () => {
        for (const s of socks) {
          const req = Buffer.from([0, 1, 0, 4, 0x21, 0x12, 0xa4, 0x42, ...crypto.getRandomValues(new Uint8Array(12)), 0x7f, 0x01, 0, 0]);
          s.send(req, a.relayUdpPort, RELAY);
          out.bytesOut! += req.length;
        }
      });
      await sleep(200);
      for (const s of socks) s.close();
      break;
    }
    case 'http-hold': {
      // attack 10: idle and dribbling connections from 30 addresses, 100 each
      const conns: net.Socket[] = [];
      out.opened = 0; out.refusedOrClosed = 0;
      for (let src = 0; src < 30 && performance.now() < end; src++) {
        for (let i = 0; i < 100; i++) {
          const c = net.connect({ host: RELAY, port: a.relayHttpPort, localAddress: `127.0.3.${1 + src}` });
          c.on('error', () => { /* counted on close */ });
          c.on('close', () => { out.refusedOrClosed!++; });
          c.on('connect', () => { out.opened!++; if (i % 2 === 0) c.write('GET / HTTP/1.1\r\n'); });
          conns.push(c);
        }
        await sleep(5);
      }
      await until(end, async () => { for (const c of conns) if (!c.destroyed && c.writable) c.write('X'); await sleep(500); });
      out.stillOpen = conns.filter((c) => !c.destroyed).length;
      for (const c of conns) c.destroy();
      break;
    }
  }
  return out;
}

const spec = JSON.parse(process.argv[2] ?? '{}') as AttackSpec;
run(spec).then((r) => { process.stdout.write(JSON.stringify({ done: true, ...r }) + '\n'); process.exit(0); },
  (err: unknown) => { process.stderr.write(`attacker: ${String(err)}\n`); process.exit(1); });
