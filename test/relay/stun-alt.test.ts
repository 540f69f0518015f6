// The relay's second STUN endpoint (src/relay/stun-other.ts, RFC 5780): a STUN-only UDP
// port whose answers and the UDP port's name each other in OTHER-ADDRESS; one per-source
// budget for both; relay frames there are not answered. With --workers too. netcheck
// (src/agent/netcheck-stun.ts) follows OTHER-ADDRESS, so one relay is enough to classify
// the mapping.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as dgram from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeBindingRequest, newTransactionId, parseStun, type StunMessage } from '../../src/stun/codec.js';
import { encodeHello } from '../../src/relay/wire.js';
import { probeStun } from '../../src/agent/netcheck-stun.js';
import { startRelay, listeningLine, waitFor, type Relay } from './helpers.js';

const CLI = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../dist/src/relay/cli.js');
const dir = mkdtempSync(join(tmpdir(), 'mpyc-relay-stun-alt-'));
const relays: Relay[] = [];
const socks: dgram.Socket[] = [];
const procs: ChildProcess[] = [];
afterEach(async () => {
  for (const s of socks.splice(0)) try { s.close(); } catch { /* closed */ }
  for (const r of relays.splice(0)) await r.server.stop(false);
});
afterAll(() => { for (const p of procs) p.kill('SIGKILL'); rmSync(dir, { recursive: true, force: true }); });

async function socket(): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  socks.push(s);
  return s;
}

/** One Binding request to `port`; the parsed answer, or undefined after `ms`. */
function ask(s: dgram.Socket, port: number, ms = 500): Promise<StunMessage | undefined> {
  const tx = newTransactionId();
  return new Promise((resolve) => {
    const t = setTimeout(() => { s.off('message', on); resolve(undefined); }, ms);
    const on = (m: Buffer): void => {
      const p = parseStun(m);
      if (!p.ok || Buffer.compare(Buffer.from(p.message.transactionId), Buffer.from(tx)) !== 0) return;
      clearTimeout(t); s.off('message', on); resolve(p.message);
    };
    s.on('message', on);
    s.send(encodeBindingRequest(tx), port, '127.0.0.1');
  });
}

async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const p = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

describe('the second STUN endpoint', () => {
  it('both endpoints answer with the same mapped address and name each other in OTHER-ADDRESS; relay frames there get nothing', async () => {
    const r = await startRelay({ stunAltPort: 0 });
    relays.push(r);
    const alt = r.stunAltPort;
    expect(alt).toBeGreaterThan(0);
    const s = await socket();
    const main = await ask(s, r.udpPort), other = await ask(s, alt!);
    const me = { family: 'IPv4', address: '127.0.0.1', port: s.address().port };
    expect(main?.mappedAddress).toEqual(me);
    expect(other?.mappedAddress).toEqual(me);
    expect(main?.otherAddress).toEqual({ family: 'IPv4', address: '127.0.0.1', port: alt });
    expect(other?.otherAddress).toEqual({ family: 'IPv4', address: '127.0.0.1', port: r.udpPort });
    // the STUN-only port: a HELLO is no registration there
    const u0 = r.server.counters.drops.unknown_type;
    let replies = 0;
    s.on('message', () => { replies++; });
    s.send(encodeHello(), alt!, '127.0.0.1');
    await waitFor(() => r.server.counters.drops.unknown_type === u0 + 1, 2000, 'HELLO dropped on the STUN port');
    await new Promise((res) => setTimeout(res, 100));
    expect(replies).toBe(0);
  });

  it('one per-source budget for both ports; without the option no OTHER-ADDRESS', async () => {
    const r = await startRelay({ stunAltPort: 0, stunRatePerSource: 2 }); // burst 4
    relays.push(r);
    const alt = r.stunAltPort!;
    const s = await socket();
    const answers = (await Promise.all([0, 1, 2, 3, 4, 5].map((i) => ask(s, i % 2 ? alt : r.udpPort, 300)))).filter(Boolean).length;
    expect(answers).toBe(4);
    const plain = await startRelay();
    relays.push(plain);
    const m = await ask(await socket(), plain.udpPort);
    expect(m?.mappedAddress).toBeDefined();
    expect(m?.otherAddress).toBeUndefined();
  });

  it('netcheck with one relay: its two endpoints classify the mapping (loopback: endpoint-independent)', async () => {
    const r = await startRelay({ stunAltPort: 0 });
    relays.push(r);
    const { probes, families } = await probeStun([{ relay: 0, address: '127.0.0.1', port: r.udpPort }], 1);
    expect(probes.map((p) => [p.port, !!p.other])).toEqual([[r.udpPort, false], [r.stunAltPort, true]]);
    expect(families[0]).toMatchObject({ family: 4, mapping: 'endpoint-independent' });
  });

  it('mpyc-relay serve --workers 2 --stun-alt-port P: both ports answer, each naming the other, for 8 sources', async () => {
    const key = join(dir, 'relay.key');
    spawnSync(process.execPath, [CLI, 'keygen', '--out', key]);
    const altPort = await freeUdpPort();
    const p = spawn(process.execPath, [CLI, 'serve', '--key', key, '--udp', '127.0.0.1:0', '--http', 'off', '--workers', '2', '--stun-alt-port', String(altPort), '--log-format', 'json'], { stdio: ['ignore', 'ignore', 'pipe'] });
    procs.push(p);
    const listening = await listeningLine<{ udpPort: number; stunAltPort: number }>(p);
    expect(listening.stunAltPort).toBe(altPort);
    // many sources (the kernel spreads datagrams over the workers' shared sockets): all answered, correctly
    for (let i = 0; i < 8; i++) {
      const s = await socket();
      const [a, b] = [await ask(s, listening.udpPort, 2000), await ask(s, altPort, 2000)];
      expect(a?.otherAddress?.port).toBe(altPort);
      expect(b?.otherAddress?.port).toBe(listening.udpPort);
      expect(b?.mappedAddress?.port).toBe(s.address().port);
    }
    p.kill('SIGTERM');
  }, 30_000);

  it('by default (auto) a relay on a fixed UDP port answers STUN on the next port too; a taken next port is skipped with a warning, an explicit taken port is an error', async () => {
    const key = join(dir, 'relay-auto.key');
    spawnSync(process.execPath, [CLI, 'keygen', '--out', key]);
    const serve = (udpPort: number, extra: string[] = []): ChildProcess => {
      const p = spawn(process.execPath, [CLI, 'serve', '--key', key, '--udp', `127.0.0.1:${udpPort}`, '--http', 'off', '--log-format', 'json', ...extra], { stdio: ['ignore', 'ignore', 'pipe'] });
      procs.push(p);
      return p;
    };
    // a fixed port whose next port is free
    let base = 0;
    for (let attempt = 0; attempt < 20 && !base; attempt++) {
      const b = await freeUdpPort();
      if (b < 65535) { const t = dgram.createSocket('udp4'); const ok = await new Promise<boolean>((r) => { t.once('error', () => r(false)); t.bind(b + 1, '127.0.0.1', () => r(true)); }); try { t.close(); } catch { /* never bound */ } if (ok) base = b; }
    }
    expect(base).toBeGreaterThan(0);
    const p = serve(base);
    const listening = await listeningLine<{ udpPort: number; stunAltPort: number | null }>(p);
    expect(listening.stunAltPort).toBe(base + 1);
    const s = await socket();
    expect((await ask(s, base, 2000))?.otherAddress?.port).toBe(base + 1);
    p.kill('SIGTERM');
    await new Promise((r) => p.once('exit', r));
    // the next port taken: the relay starts without it and says why
    const squatter = dgram.createSocket('udp4');
    await new Promise<void>((r) => squatter.bind(base + 1, '127.0.0.1', () => r()));
    socks.push(squatter);
    const q = serve(base);
    let err = '';
    q.stderr!.on('data', (c: Buffer) => { err += c.toString(); });
    const l2 = await listeningLine<{ stunAltPort: number | null }>(q);
    expect(l2.stunAltPort).toBeNull();
    expect(err).toMatch(new RegExp(`second STUN port ${base + 1} unavailable \\(EADDRINUSE\\)`));
    q.kill('SIGTERM');
    await new Promise((r) => q.once('exit', r));
    // the same port asked for explicitly: an error, exit 1
    const x = serve(base, ['--stun-alt-port', String(base + 1)]);
    const code = await new Promise<number | null>((r) => x.once('exit', r));
    expect(code).toBe(1);
    // an ephemeral UDP port: no second port unless asked for
    const e = serve(0);
    expect((await listeningLine<{ stunAltPort: number | null }>(e)).stunAltPort).toBeNull();
    e.kill('SIGTERM');
  }, 30_000);
});
