import { describe, it, expect, afterEach } from 'vitest';
import fc from 'fast-check';
import { connect } from 'node:net';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync, existsSync, chmodSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  startControlServer, queryStatus, controlRequest, controlSocketPath, defaultControlDir, ensureControlDir,
  listControlSockets, ControlError, MAX_REQUEST_BYTES, requestPing, type ControlServer,
} from '../../src/agent/control.js';
import {
  MAX_CONTROL_PING_COUNT, MAX_CONTROL_PING_INTERVAL_MS, MIN_CONTROL_PING_INTERVAL_MS, parseControlRequest,
} from '../../src/agent/control-request.js';
import { formatStatus, formatBytes, formatDuration, formatRtt, formatPath, roundStatus } from '../../src/agent/status-format.js';
import type { AgentStatus, PingOptions, PingResult } from '../../src/agent/types.js';

const KEY = Buffer.alloc(32, 5).toString('base64');

function sampleStatus(): AgentStatus {
  const relay = { address: `${KEY}@relay.example.org:3478/8080`, transport: 'udp' as const, registered: true };
  return {
    ownIndex: 1, publicKey: KEY, mpycCommand: 'python demo.py -M4 -I 1',
    relay,
    relays: [relay, { address: `${KEY}@relay2.example.org:3478`, transport: null, registered: false, reason: 'no registration answer over UDP 198.51.100.9:3478 for 12 s' }],
    reflexiveAddress: '203.0.113.7:41641', reflexiveAddresses: ['203.0.113.7:41641', '[2001:db8::7]:41642'],
    localAddresses: ['192.168.1.20'], udpPort: 41641, udpPort6: 41642, uptimeMs: 125_000,
    peers: [
      { index: 2, publicKey: KEY, state: 'relay', path: { kind: 'relay', relay: relay.address, transport: 'ws' }, liveness: 'offline', livenessAgeMs: 20_400,
        bytesSent: 0, bytesReceived: 10, streams: 0, lastError: 'probe timeout\x1b[2J' },
      { index: 0, name: 'alice', publicKey: KEY, state: 'direct', path: { kind: 'direct', address: '198.51.100.4:41641', lan: false, family: 4, source: 'stun' }, rttMs: 1.23,
        liveness: 'connected', livenessAgeMs: 301_000, lastHeardMs: 120, bytesSent: 1_572_864, bytesReceived: 2048, handshakeAgeMs: 45_000, streams: 1 },
      { index: 3, publicKey: KEY, state: 'connecting', path: null, liveness: 'waiting', livenessAgeMs: 45_000, bytesSent: 148, bytesReceived: 0, streams: 0 },
    ],
  };
}

const dirs: string[] = [];
const servers: ControlServer[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'ctl-'));
  chmodSync(d, 0o700);
  dirs.push(d);
  return d;
}
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function rawExchange(path: string, send: string | Buffer, lines = 1): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const s = connect({ path });
    let buf = '';
    const t = setTimeout(() => { s.destroy(); reject(new Error(`timeout, got ${JSON.stringify(buf)}`)); }, 3000);
    s.on('data', (d) => {
      buf += String(d);
      const got = buf.split('\n').filter(Boolean);
      if (got.length >= lines) { clearTimeout(t); s.destroy(); resolve(got); }
    });
    s.on('error', reject);
    s.write(send);
  });
}

describe('control socket', () => {
  it('answers status over newline-delimited JSON; socket is mode 0600', async () => {
    const dir = tmp();
    const path = controlSocketPath(KEY, dir);
    servers.push(await startControlServer(path, { status: sampleStatus }));
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const st = await queryStatus(path);
    expect(st).toEqual(JSON.parse(JSON.stringify(sampleStatus())));
    expect(listControlSockets(dir)).toEqual([path]);
  });

  it('answers bad input with errors, keeps the connection and never crashes', async () => {
    const path = join(tmp(), 'a.sock');
    servers.push(await startControlServer(path, { status: () => { throw new Error('core not started'); } }));
    const r = await rawExchange(path, 'not json\n[1]\n{"method":"nope","id":7}\n{"method":"status","id":8}\n', 4);
    expect(JSON.parse(r[0]!)).toEqual({ ok: false, error: expect.stringMatching(/not JSON/) });
    expect(JSON.parse(r[1]!)).toEqual({ ok: false, error: 'request must be a JSON object' });
    expect(JSON.parse(r[2]!)).toEqual({ id: 7, ok: false, error: expect.stringMatching(/unknown method "nope"/) });
    expect(JSON.parse(r[3]!)).toEqual({ id: 8, ok: false, error: 'status failed: core not started' });
    await expect(controlRequest(path, 'status')).rejects.toThrow(/agent: status failed: core not started/);
  });

  it('bounds the request size: an oversized line gets an error and the connection is closed', async () => {
    const path = join(tmp(), 'b.sock');
    servers.push(await startControlServer(path, { status: sampleStatus }));
    const r = await rawExchange(path, Buffer.alloc(MAX_REQUEST_BYTES + 10, 0x61));
    expect(JSON.parse(r[0]!).error).toMatch(/request longer than 65536 bytes/);
    // the server is still fine
    expect((await queryStatus(path)).ownIndex).toBe(1);
  });

  it('serves metrics when the handler exists', async () => {
    const path = join(tmp(), 'm.sock');
    servers.push(await startControlServer(path, { status: sampleStatus, metrics: async () => 'x_total 1\n' }));
    expect(await controlRequest(path, 'metrics')).toBe('x_total 1\n');
  });

  it('removes a stale socket file at start, but refuses a live one or a non-socket', async () => {
    const dir = tmp();
    const path = join(dir, 'stale.sock');
    // a socket file nobody listens on: left behind by an agent that was killed
    const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((r) => child.stdout!.once('data', () => r()));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(existsSync(path)).toBe(true);
    const srv = await startControlServer(path, { status: sampleStatus });
    servers.push(srv);
    expect((await queryStatus(path)).ownIndex).toBe(1);
    await expect(startControlServer(path, { status: sampleStatus })).rejects.toThrow(/another agent is already listening/);
    const file = join(dir, 'plain');
    writeFileSync(file, 'x');
    await expect(startControlServer(file, { status: sampleStatus })).rejects.toThrow(/exists and is not a socket/);
    await srv.close();
    expect(existsSync(path)).toBe(false);
  });

  it('client errors say what to do', async () => {
    const dir = tmp();
    await expect(queryStatus(join(dir, 'none.sock'))).rejects.toThrow(/cannot connect \(ENOENT\) \(is the agent running\?/);
    await expect(startControlServer(join(dir, 'x'.repeat(120)), { status: sampleStatus })).rejects.toThrow(ControlError);
  });

  it('control directory: default location, created 0700, refused when others can enter', () => {
    expect(defaultControlDir({ XDG_RUNTIME_DIR: '/run/user/1000' }, 1000)).toBe('/run/user/1000/mpyc-agent');
    expect(defaultControlDir({}, 1000)).toBe('/tmp/mpyc-agent-1000');
    const base = tmp();
    const d = join(base, 'sub', 'mpyc-agent');
    ensureControlDir(d);
    expect(statSync(d).mode & 0o777).toBe(0o700);
    const open = join(base, 'open');
    mkdirSync(open);
    chmodSync(open, 0o755);
    expect(() => ensureControlDir(open)).toThrow(/lets others in; fix with: chmod 700/);
    expect(controlSocketPath(KEY, '/x')).toMatch(/^\/x\/agent-[0-9a-f]{16}\.sock$/);
    expect(controlSocketPath(KEY, '/x')).not.toBe(controlSocketPath(Buffer.alloc(32, 6).toString('base64'), '/x'));
  });
});

/** The status an agent of v0.1 sent: none of the fields added since. */
function olderStatus(): AgentStatus {
  const st = sampleStatus();
  delete st.relays; delete st.reflexiveAddresses; delete st.udpPort6;
  for (const p of st.peers) {
    delete p.liveness; delete p.livenessAgeMs; delete p.lastHeardMs;
    if (p.path?.kind === 'direct') { delete p.path.family; delete p.path.source; }
  }
  return st;
}

/** A ping handler that records its calls and answers like the agent (one sample per count). */
function fakePing(): { calls: { party: number; opts: PingOptions }[]; ping: (party: number, opts: PingOptions) => Promise<PingResult> } {
  const calls: { party: number; opts: PingOptions }[] = [];
  return {
    calls,
    ping: async (party, opts) => {
      calls.push({ party, opts });
      if (party === 9) throw new Error('no party 9 among this agent\'s peers');
      return { peerIndex: party, samples: Array.from({ length: opts.count ?? 1 }, (_, seq) => ({ seq, rttMs: 1.5, path: { kind: 'relay', relay: 'r', transport: 'udp' } })) };
    },
  };
}

describe('control socket: ping and malformed requests', () => {
  it('ping: params reach the agent checked and bounded; its result or error comes back with the id', async () => {
    const path = join(tmp(), 'p.sock');
    const f = fakePing();
    servers.push(await startControlServer(path, { status: sampleStatus, ping: f.ping }));
    const r = await requestPing(path, 2, { count: 3, intervalMs: 50 });
    expect(r.samples.map((x) => x.seq)).toEqual([0, 1, 2]);
    expect(f.calls).toEqual([{ party: 2, opts: { count: 3, intervalMs: 50 } }]);
    await expect(requestPing(path, 9, { count: 1, intervalMs: 1000 })).rejects.toThrow(/agent: ping failed: no party 9 among this agent's peers/);
    const raw = await rawExchange(path, [
      '{"method":"ping","id":1}', '{"method":"ping","id":2,"params":{"party":-1}}', '{"method":"ping","id":3,"params":{"party":1,"count":101}}',
      '{"method":"ping","id":4,"params":{"party":1,"intervalMs":5}}', '{"method":"ping","id":5,"params":{"party":1.5}}', '{"method":"ping","id":6,"params":{"party":1}}',
    ].join('\n') + '\n', 6);
    const answers = raw.map((l) => JSON.parse(l) as { id: number; ok: boolean; error?: string; result?: PingResult });
    expect(answers.map((a) => a.id)).toEqual([1, 2, 3, 4, 5, 6]); // in order, each with its id
    expect(answers[0]!.error).toMatch(/ping needs "params"/);
    expect(answers[1]!.error).toMatch(/"party" must be an integer in 0\.\.999/);
    expect(answers[2]!.error).toMatch(/"count" must be an integer in 1\.\.100/);
    expect(answers[3]!.error).toMatch(/"intervalMs" must be an integer in 10\.\.10000/);
    expect(answers[4]!.ok).toBe(false);
    expect(answers[5]).toMatchObject({ ok: true, result: { peerIndex: 1 } });
    expect(f.calls.slice(2)).toEqual([{ party: 1, opts: { count: 1, intervalMs: 1000 } }]); // the defaults
  });

  it('an agent without a ping handler says so', async () => {
    const path = join(tmp(), 'np.sock');
    servers.push(await startControlServer(path, { status: sampleStatus }));
    await expect(requestPing(path, 1, { count: 1, intervalMs: 1000 })).rejects.toThrow(/agent: ping: not served by this agent/);
  });

  it('a connection is closed when idle, but not while an answer is pending (a ping takes count × interval)', async () => {
    const path = join(tmp(), 'slow.sock');
    const ping = (party: number, opts: PingOptions): Promise<PingResult> =>
      new Promise((r) => setTimeout(() => r({ peerIndex: party, samples: [{ seq: 0, rttMs: 1, path: null }] }), opts.intervalMs));
    servers.push(await startControlServer(path, { status: sampleStatus, ping }, { idleTimeoutMs: 150 }));
    // four idle timeouts long, and answered
    expect((await requestPing(path, 1, { count: 1, intervalMs: 600 })).samples).toHaveLength(1);
    // a connection that asks nothing is closed after the idle timeout
    const idle = connect({ path });
    const t0 = Date.now();
    await new Promise<void>((r) => idle.once('close', () => r()));
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  it('fuzz: the request parser never throws, and whatever it accepts is within the bounds', () => {
    const method = fc.oneof(fc.constantFrom('status', 'metrics', 'ping', 'nope', ''), fc.jsonValue());
    const num = fc.oneof(fc.integer({ min: -5, max: 2000 }), fc.double(), fc.constantFrom(0, 1, 100, 101, 9, 10, 10000, 10001, 999, 1000), fc.string(), fc.constant(null));
    const params = fc.oneof(fc.record({ party: num, count: num, intervalMs: num }, { requiredKeys: [] }), fc.jsonValue());
    const request = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.jsonValue().map((v) => JSON.stringify(v)),
      fc.record({ method, params, id: fc.jsonValue() }, { requiredKeys: [] }).map((v) => JSON.stringify(v)),
    );
    fc.assert(fc.property(request, (line) => {
      const r = parseControlRequest(line);
      if (!r.ok) return typeof r.error === 'string' && r.error.length < 300;
      if (r.request.method !== 'ping') return true;
      const { party, count, intervalMs } = r.request;
      return Number.isInteger(party) && party >= 0 && party < 1000 && Number.isInteger(count) && count >= 1 && count <= MAX_CONTROL_PING_COUNT
        && Number.isInteger(intervalMs) && intervalMs >= MIN_CONTROL_PING_INTERVAL_MS && intervalMs <= MAX_CONTROL_PING_INTERVAL_MS;
    }), { numRuns: 3000, seed: 1313 });
  });

  it('fuzz over the socket: garbage lines, binary bytes and bad params never crash the server; every line is answered and status still works', async () => {
    const path = join(tmp(), 'fuzz.sock');
    const f = fakePing();
    servers.push(await startControlServer(path, { status: sampleStatus, ping: f.ping }));
    const line = fc.oneof(
      fc.string({ maxLength: 100 }).map((x) => x.replace(/\n/g, ' ')),
      fc.uint8Array({ maxLength: 100 }).map((b) => Buffer.from(b.filter((x) => x !== 0x0a)).toString('latin1')),
      fc.record({ method: fc.constantFrom('ping', 'status', 'x'), params: fc.jsonValue(), id: fc.jsonValue() }, { requiredKeys: ['method'] }).map((v) => JSON.stringify(v)),
      fc.record({ party: fc.integer({ min: -2, max: 1002 }), count: fc.integer({ min: 0, max: 3 }), intervalMs: fc.integer({ min: 8, max: 12 }) }).map((p) => JSON.stringify({ method: 'ping', params: p })),
    );
    await fc.assert(fc.asyncProperty(fc.array(line, { minLength: 1, maxLength: 8 }), async (lines) => {
      const answers = await rawExchange(path, lines.join('\n') + '\n', lines.length);
      expect(answers).toHaveLength(lines.length);
      for (const a of answers) expect(typeof (JSON.parse(a) as { ok: unknown }).ok).toBe('boolean');
    }), { numRuns: 150, seed: 4242 });
    expect((await queryStatus(path)).ownIndex).toBe(1);
    for (const c of f.calls) {
      expect(c.opts.count).toBeGreaterThanOrEqual(1);
      expect(c.opts.count).toBeLessThanOrEqual(MAX_CONTROL_PING_COUNT);
      expect(c.opts.intervalMs).toBeGreaterThanOrEqual(MIN_CONTROL_PING_INTERVAL_MS);
    }
  }, 30_000);
});

describe('status format', () => {
  it('prints every relay with its registration state and reason, the addresses per family, and a row per peer in index order', () => {
    const text = formatStatus(sampleStatus());
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toBe(`party 1 of 4  key ${KEY.slice(0, 8)}…  up 2m05s  run: python demo.py -M4 -I 1`);
    expect(lines[1]).toBe(`relay  ${KEY.slice(0, 8)}…@relay.example.org:3478/8080  udp  registered`);
    expect(lines[2]).toBe(`relay  ${KEY.slice(0, 8)}…@relay2.example.org:3478      -    NOT registered: no registration answer over UDP 198.51.100.9:3478 for 12 s`);
    expect(lines[3]).toBe('addresses  reflexive 203.0.113.7:41641, [2001:db8::7]:41642  local 192.168.1.20  udp port 41641, IPv6 41642');
    expect(lines[5]).toMatch(/^PEER +STATE +LIVENESS +PATH +FOUND BY +RTT +SENT +RECEIVED +HANDSHAKE +STREAMS +LAST ERROR$/);
    expect(lines[6]).toMatch(/^0 alice +direct +connected 5m01s +direct 198\.51\.100\.4:41641 \(IPv4, STUN\) +- +1\.2 ms +1\.5 MiB +2\.0 KiB +45s +1 +-$/);
    expect(lines[7]).toMatch(new RegExp(`^2 +relay +offline 20s +relay ws ${KEY.slice(0, 8).replace(/[+/]/g, '\\$&')}…@relay\\.example\\.org:3478/8080 +- +- +0 B +10 B +- +0 +probe timeout \\[2J$`));
    expect(lines[8]).toMatch(/^3 +connecting +waiting 45s +- +/);
    expect(text).not.toContain('\x1b');
  });

  it('shows an older agent\'s status (without the newer fields) as before', () => {
    const lines = formatStatus(olderStatus()).trimEnd().split('\n');
    expect(lines[1]).toBe(`relay  ${KEY.slice(0, 8)}…@relay.example.org:3478/8080  udp  registered`);
    expect(lines[2]).toBe('addresses  reflexive 203.0.113.7:41641  local 192.168.1.20  udp port 41641');
    expect(lines[5]).toMatch(/^0 alice +direct +- +direct 198\.51\.100\.4:41641 +- +1\.2 ms /);
  });

  it('formats units and paths', () => {
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(200 * 1024 * 1024)).toBe('200 MiB');
    expect(formatDuration(3_725_000)).toBe('1h02m');
    expect(formatDuration(undefined)).toBe('-');
    expect(formatRtt(0.25)).toBe('250 µs');
    expect(formatRtt(250)).toBe('250 ms');
    expect(formatPath({ kind: 'direct', address: '10.0.0.2:5000', lan: true })).toBe('direct 10.0.0.2:5000 (LAN)');
    expect(formatPath({ kind: 'direct', address: '[fd00::2]:5000', lan: true, family: 6, source: 'interface' })).toBe('direct [fd00::2]:5000 (LAN, IPv6, interface)');
    expect(formatPath({ kind: 'direct', address: '198.51.100.4:1', lan: false, family: 4, source: 'portmap' })).toBe('direct 198.51.100.4:1 (IPv4, port mapping)');
    expect(formatPath({ kind: 'direct', address: '198.51.100.4:1', lan: false, family: 4, source: 'observed' })).toBe('direct 198.51.100.4:1 (IPv4, observed)');
    expect(formatPath({ kind: 'relay', relay: `${KEY}@r.example:3478`, transport: 'udp' })).toBe(`relay udp ${KEY.slice(0, 8)}…@r.example:3478`);
    expect(formatPath(null)).toBe('-');
  });

  it('--json rounding covers the newer numbers: liveness and last-heard ages to 0.1 ms, RTTs to 0.01 ms', () => {
    const st = sampleStatus();
    st.peers[1]!.livenessAgeMs = 301_234.56789;
    st.peers[1]!.lastHeardMs = 12.3456;
    st.peers[1]!.rttMs = 1.23456;
    const r = roundStatus(st);
    expect(r.peers[1]!.livenessAgeMs).toBe(301234.6);
    expect(r.peers[1]!.lastHeardMs).toBe(12.3);
    expect(r.peers[1]!.rttMs).toBe(1.23);
    expect(r.udpPort6).toBe(41642);
  });
});
