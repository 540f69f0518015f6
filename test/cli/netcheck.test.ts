// `mpyc-agent netcheck` (built binary) against real relay processes and coturn on loopback:
// what one relay, two relays and a relay's RFC 5780 OTHER-ADDRESS tell about the mapping,
// IPv4 and IPv6, an unreachable relay, the WebSocket through an HTTP proxy (and a proxy that
// refuses), the session file as input. Behind real NATs: netcheck-lab.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serializeSession } from '../../src/agent/session-file.js';
import type { NetcheckReport } from '../../src/agent/netcheck-report.js';
import { relayAddressOf, runCli, startRelayProcess, type RelayProcess } from './helpers.js';

let dir: string;
let relayA: RelayProcess;
let relayB: RelayProcess;
let relay6: RelayProcess;

/** the environment without any proxy settings of the machine running the tests */
function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(https?|all|no)_proxy$/i.test(k)) e[k] = v;
  return { ...e, ...extra };
}

const addr = (r: RelayProcess, host = '127.0.0.1'): string => `${r.publicKey}@${host.includes(':') ? `[${host}]` : host}:${r.udpPort}/${r.httpPort}`;

async function netcheck(args: string[], e: NodeJS.ProcessEnv = env()): Promise<{ code: number; report: NetcheckReport; stderr: string }> {
  const r = await runCli(['netcheck', ...args, '--json'], { env: e });
  let report: NetcheckReport;
  try { report = JSON.parse(r.stdout) as NetcheckReport; } catch { throw new Error(`not JSON (exit ${r.code}): ${r.stdout}\n${r.stderr}`); }
  return { code: r.code, report, stderr: r.stderr };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cli-netcheck-'));
  [relayA, relayB, relay6] = await Promise.all([startRelayProcess(dir, 'a'), startRelayProcess(dir, 'b'), startRelayProcess(dir, 'six', [], '::1')]);
}, 30_000);

afterAll(async () => {
  await Promise.all([relayA, relayB, relay6].map((r) => r?.daemon.stop()));
  rmSync(dir, { recursive: true, force: true });
});

describe('mpyc-agent netcheck on loopback', () => {
  it('one relay: UDP and WebSocket reachable, the reflexive address is this host\'s own, the mapping unknown with one STUN endpoint', async () => {
    const { code, report } = await netcheck(['--relay', addr(relayA)]);
    expect(code).toBe(0);
    expect(report.udp).toBe(true);
    expect(report.websocket).toBe(true);
    const [v4] = report.families;
    expect(report.families).toHaveLength(1);
    expect(v4).toMatchObject({ family: 4, socket: true, nat: false, mapping: 'unknown', mappingReason: 'one STUN endpoint', reflexive: [`127.0.0.1:${v4!.localPort}`] });
    const probe = report.relays[0]!.udp[0]!;
    expect(probe).toMatchObject({ address: '127.0.0.1', port: relayA.udpPort, sent: 3, answered: 3, reflexive: `127.0.0.1:${v4!.localPort}` });
    expect(probe.rttMs).toBeGreaterThan(0);
    expect(report.relays[0]!.websocket).toMatchObject({ used: { url: `ws://127.0.0.1:${relayA.httpPort}/relay`, ok: true } });
    expect(report.relays[0]!.websocket!.used.openMs).toBeGreaterThan(0);
    expect(report.nearest).toEqual({ relay: 0, rttMs: probe.rttMs, over: 'udp' });

    const human = await runCli(['netcheck', '--relay', addr(relayA)], { env: env() });
    expect(human.code).toBe(0);
    const lines = human.stdout.split('\n');
    expect(lines[0]).toBe('mpyc-agent netcheck: 1 relay, checked from this host (no agent needed)');
    expect(human.stdout).toMatch(/^ {2}UDP {8}yes: 1 of 1 relays answered STUN$/m);
    expect(human.stdout).toMatch(/^ {2}IPv4 {7}reflexive 127\.0\.0\.1:\d+ \(no NAT: the address is this host's own; local port \d+\)$/m);
    expect(human.stdout).toMatch(/^ {2}IPv6 {7}no relay has an IPv6 address$/m);
    expect(human.stdout).toMatch(/^ {2}mapping {4}IPv4 unknown \(one STUN endpoint\)$/m);
    expect(human.stdout).toMatch(/^ {2}WebSocket {2}yes: 1 of 1 relays$/m);
    expect(human.stdout).toMatch(new RegExp(`^ {4}UDP {2}127\\.0\\.0\\.1:${relayA.udpPort} {2}\\S+ (µs|ms) {2}reflexive 127\\.0\\.0\\.1:\\d+ {2}3 of 3 answered$`, 'm'));
    expect(human.stdout).toMatch(new RegExp(`^ {4}WebSocket {2}ws://127\\.0\\.0\\.1:${relayA.httpPort}/relay {2}open in `, 'm'));
  });

  it('the relays of a session file: two STUN endpoints that see the same address are endpoint-independent; IPv6 checked where a relay has an address', async () => {
    const session = join(dir, 'two.json');
    // a session still being put together (no parties yet) has its relays all the same
    writeFileSync(session, serializeSession({ basePort: 11365, relays: [relayAddressOf(relayA), relayAddressOf(relayB), { ...relayAddressOf(relay6), host: '::1' }], parties: [] }));
    const { code, report } = await netcheck([session]);
    expect(code).toBe(0);
    const v4 = report.families.find((f) => f.family === 4)!;
    const v6 = report.families.find((f) => f.family === 6)!;
    expect(v4).toMatchObject({ mapping: 'endpoint-independent', mappingReason: 'the same reflexive address from 2 STUN endpoints', nat: false });
    expect(v4.reflexive).toEqual([`127.0.0.1:${v4.localPort}`]);
    expect(v6).toMatchObject({ socket: true, mapping: 'unknown', mappingReason: 'one STUN endpoint', nat: false, reflexive: [`[::1]:${v6.localPort}`] });
    expect(report.relays.map((r) => r.udp.map((p) => p.family))).toEqual([[4], [4], [6]]);
    expect(report.relays[2]!.websocket!.used).toMatchObject({ url: `ws://[::1]:${relay6.httpPort}/relay`, ok: true });
    const human = await runCli(['netcheck', session], { env: env() });
    expect(human.stdout).toMatch(/^ {2}UDP {8}yes: 3 of 3 relays answered STUN$/m);
    expect(human.stdout).toMatch(/^ {2}IPv6 {7}reflexive \[::1\]:\d+ \(no NAT/m);
    expect(human.stdout).toMatch(/^ {2}mapping {4}IPv4 endpoint-independent: the same reflexive address from 2 STUN endpoints; IPv6 unknown \(one STUN endpoint\)$/m);
    // a broken session file is exit 3, as for every command
    writeFileSync(join(dir, 'broken.json'), '{"version": 1, "relays": [');
    const broken = await runCli(['netcheck', join(dir, 'broken.json')], { env: env() });
    expect(broken.code).toBe(3);
    expect(broken.stderr).toMatch(/broken\.json:1:\d+: JSON syntax error/);
  });

  it('nothing answers: exit 1, UDP and WebSocket both no, and the text says the agent cannot work from here', async () => {
    const closedUdp = await freeUdpPort();
    const closedTcp = await freeTcpPort();
    const dead = `${relayA.publicKey}@127.0.0.1:${closedUdp}/${closedTcp}`;
    // each waits out the STUN retransmissions (≈ 4.5 s): run side by side
    const [{ code, report }, human] = await Promise.all([netcheck(['--relay', dead]), runCli(['netcheck', '--relay', dead], { env: env() })]);
    expect(code).toBe(1);
    expect(report).toMatchObject({ udp: false, websocket: false });
    expect(report.relays[0]!.udp[0]).toMatchObject({ answered: 0, error: expect.stringMatching(/^no answer \(no STUN Binding response after 4 transmissions\)$/) });
    expect(report.relays[0]!.websocket!.used).toMatchObject({ ok: false, error: 'ECONNREFUSED' });
    expect(report.families[0]).toMatchObject({ mapping: 'unknown', mappingReason: 'no STUN answer', reflexive: [] });
    expect(human.code).toBe(1);
    expect(human.stdout).toMatch(/^ {2}UDP {8}no: 0 of 1 relays answered STUN$/m);
    expect(human.stdout).toMatch(/No relay answered, over UDP or WebSocket: the agent cannot work from this network/);
  }, 20_000);
});

describe('mpyc-agent netcheck: a STUN server that names its second endpoint (coturn, RFC 5780 OTHER-ADDRESS)', () => {
  let turn: ChildProcess | undefined;
  let port = 0;
  beforeAll(async () => {
    if (spawnSync('sh', ['-c', 'command -v turnserver']).status !== 0) throw new Error('turnserver not found: install coturn (apt-get install coturn); CI has it');
    // coturn's alternate endpoint is the second listening address and port + 1
    port = await freeUdpPort(2);
    turn = spawn('turnserver', ['-n', '--stun-only', '--no-cli', '--no-tls', '--no-dtls', '--log-file', 'stdout', '--simple-log',
      '-L', '127.0.0.1', '-L', '127.0.0.2', '--listening-port', String(port)], { stdio: 'ignore' });
    const deadline = Date.now() + 10_000;
    while ((await netcheck(['--relay', `${relayA.publicKey}@127.0.0.1:${port}`])).report.udp !== true) {
      if (Date.now() > deadline) throw new Error('turnserver did not answer');
    }
  }, 30_000);
  afterAll(() => { turn?.kill('SIGKILL'); });

  it('one relay address is enough: the OTHER-ADDRESS endpoint is asked too, and the same reflexive address from both is endpoint-independent', async () => {
    const { code, report } = await netcheck(['--relay', `${relayA.publicKey}@127.0.0.1:${port}`]);
    expect(code).toBe(0);
    expect(report.websocket).toBe(null); // no /httpPort: nothing to open
    const probes = report.relays[0]!.udp;
    expect(probes.map((p) => [p.address, p.port, p.other ?? false])).toEqual([['127.0.0.1', port, false], ['127.0.0.2', port + 1, true]]);
    expect(probes[0]!.otherAddress).toBe(`127.0.0.2:${port + 1}`);
    expect(probes[1]!.answered).toBeGreaterThan(0);
    expect(report.families[0]).toMatchObject({ mapping: 'endpoint-independent', mappingReason: 'the same reflexive address from 2 STUN endpoints' });
    // the relay's RTT is its own endpoint's, not the alternate's
    expect(report.nearest).toMatchObject({ relay: 0, rttMs: probes[0]!.rttMs, over: 'udp' });
    const human = await runCli(['netcheck', '--relay', `${relayA.publicKey}@127.0.0.1:${port}`], { env: env() });
    expect(human.stdout).toMatch(new RegExp(`^ {4}UDP {2}127\\.0\\.0\\.2:${port + 1} \\(its OTHER-ADDRESS\\) {2}\\S+ (µs|ms) {2}reflexive 127\\.0\\.0\\.1:\\d+`, 'm'));
    expect(human.stdout).toMatch(/^ {2}WebSocket {2}not checked: no relay address has an \/httpPort$/m);
  });
});

describe('mpyc-agent netcheck: the WebSocket through an HTTP proxy', () => {
  let proxy: Server;
  let proxyPort = 0;
  let mode: 'tunnel' | 'refuse' = 'tunnel';
  const seen: { target: string; auth: string | undefined }[] = [];
  const tunnels = new Set<Socket>();
  beforeAll(async () => {
    proxy = createServer((_req, res) => res.writeHead(405).end());
    proxy.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
      seen.push({ target: req.url ?? '', auth: req.headers['proxy-authorization'] });
      client.on('error', () => undefined);
      if (mode === 'refuse') { client.end('HTTP/1.1 407 Proxy Authentication Required\r\n\r\n'); return; }
      const [host, p] = [req.url!.replace(/:\d+$/, '').replace(/^\[|\]$/g, ''), Number(/:(\d+)$/.exec(req.url!)![1])];
      const upstream = connect({ host, port: p }, () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        upstream.write(head);
        upstream.pipe(client);
        client.pipe(upstream);
      });
      upstream.on('error', () => client.destroy());
      tunnels.add(client).add(upstream);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
    proxyPort = (proxy.address() as { port: number }).port;
  });
  afterAll(async () => {
    for (const t of tunnels) t.destroy();
    await new Promise<void>((r) => proxy.close(() => r()));
  });

  it('HTTP_PROXY (the relay\'s WebSocket is ws://): the WebSocket opens through the proxy (CONNECT with the credentials), also without it; the report hides the credentials', async () => {
    mode = 'tunnel';
    seen.length = 0;
    // HTTPS_PROXY is for wss:// relays: the agent would not use it for this one, nor does netcheck
    const httpsOnly = await netcheck(['--relay', addr(relayA)], env({ HTTPS_PROXY: `http://127.0.0.1:${proxyPort}` }));
    expect(httpsOnly.report.relays[0]!.websocket).toEqual({ used: expect.objectContaining({ ok: true }) });
    expect(seen).toEqual([]);
    const { code, report } = await netcheck(['--relay', addr(relayA)], env({ HTTP_PROXY: `http://alice:s3cret@127.0.0.1:${proxyPort}` }));
    expect(code).toBe(0);
    const ws = report.relays[0]!.websocket!;
    expect(ws.proxy).toBe(`http://127.0.0.1:${proxyPort}`);
    expect(ws.used).toMatchObject({ ok: true });
    expect(ws.direct).toMatchObject({ ok: true });
    expect(seen).toEqual([{ target: `127.0.0.1:${relayA.httpPort}`, auth: `Basic ${Buffer.from('alice:s3cret').toString('base64')}` }]);
    expect(JSON.stringify(report)).not.toContain('s3cret');
    const human = await runCli(['netcheck', '--relay', addr(relayA)], { env: env({ http_proxy: `http://127.0.0.1:${proxyPort}` }) });
    expect(human.stdout).toMatch(new RegExp(`^ {2}WebSocket {2}yes: 1 of 1 relays, through proxy http://127\\.0\\.0\\.1:${proxyPort}$`, 'm'));
    expect(human.stdout).toMatch(/^ {4}WebSocket without the proxy {2}ws:\/\/.* {2}open in /m);
  });

  it('a proxy that refuses: the WebSocket the agent would use fails with the proxy\'s answer, while the direct one opens; NO_PROXY skips the proxy', async () => {
    mode = 'refuse';
    seen.length = 0;
    const { code, report } = await netcheck(['--relay', addr(relayA)], env({ HTTP_PROXY: `http://127.0.0.1:${proxyPort}` }));
    expect(code).toBe(0); // UDP works
    expect(report.websocket).toBe(false);
    expect(report.relays[0]!.websocket!.used).toMatchObject({ ok: false, error: 'HTTP 407 Proxy Authentication Required instead of a WebSocket upgrade (from the proxy or, through it, the relay)' });
    expect(seen).toEqual([expect.objectContaining({ target: `127.0.0.1:${relayA.httpPort}` })]);
    expect(report.relays[0]!.websocket!.direct).toMatchObject({ ok: true });
    seen.length = 0;
    const bypass = await netcheck(['--relay', addr(relayA)], env({ HTTP_PROXY: `http://127.0.0.1:${proxyPort}`, NO_PROXY: 'localhost,127.0.0.1' }));
    expect(bypass.report.relays[0]!.websocket).toEqual({ used: expect.objectContaining({ ok: true }) });
    expect(seen).toEqual([]);
  });
});

async function freeTcpPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const p = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

/** a UDP port free on 127.0.0.1 (and, with width 2, the next one too, on 127.0.0.2 as well) */
async function freeUdpPort(width = 1): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20000 + Math.floor(Math.random() * 30000);
    const sockets = [];
    let ok = true;
    for (let k = 0; k < width && ok; k++) {
      for (const host of width > 1 ? ['127.0.0.1', '127.0.0.2'] : ['127.0.0.1']) {
        const s = createSocket('udp4');
        ok = await new Promise<boolean>((r) => { s.once('error', () => r(false)); s.bind(base + k, host, () => r(true)); });
        sockets.push(s);
        if (!ok) break;
      }
    }
    for (const s of sockets) { try { s.close(); } catch { /* never bound */ } }
    if (ok) return base;
  }
  throw new Error('no free UDP port');
}
