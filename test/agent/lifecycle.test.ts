// The daemon's lifecycle with the real binary (dist/): SIGTERM ends `mpyc-agent up` within
// 2 s in every state — no peers, after a local connection was opened and half-closed
// (CLOSE-WAIT), mid-transfer, after the peer's agent died — closing every local socket.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { writeKeyFile } from '../../src/common/keys.js';
import { PeerKey } from '../../src/common/peer-key.js';
import { serializeSession } from '../../src/agent/session-file.js';
import { startRelay, type Relay } from '../relay/helpers.js';
import { freeBase } from '../tools/ports.js';

const cli = join(import.meta.dirname, '../../dist/src/agent/cli.js');
/** the brief: stop within 2 s in every state */
const STOP_BOUND_MS = 2_000;
let dir: string;
let relay: Relay;
let session: string;
let keys: string[];
const children = new Set<ChildProcess>();
const closers: (() => void)[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'agent-life-'));
  relay = await startRelay();
  keys = [0, 1].map((i) => join(dir, `p${i}.key`));
  const pubs = keys.map((k) => PeerKey.fromBytes(writeKeyFile(k).publicKey).text);
  session = join(dir, 'session.json');
  writeFileSync(session, serializeSession({
    basePort: 11365,
    relays: [{ publicKey: PeerKey.fromBytes(relay.key.publicKey).text, host: '127.0.0.1', udpPort: relay.udpPort, httpPort: relay.httpPort }],
    parties: pubs.map((publicKey) => ({ publicKey })),
  }));
});
afterEach(() => {
  for (const c of children) c.kill('SIGKILL');
  children.clear();
  for (const f of closers.splice(0)) f();
});
afterAll(async () => {
  await relay.server.stop(false);
  rmSync(dir, { recursive: true, force: true });
});

async function up(i: number, base: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [cli, 'up', session, '--key', keys[i]!, '--bind', '127.0.0.1', '--local-base', String(base),
    '--control', join(dir, `p${i}.sock`), '--log-level', process.env.LIFE_DEBUG ? 'debug' : 'warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.stderr!.on('data', (d: Buffer) => { if (process.env.LIFE_DEBUG) process.stdout.write(d); });
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('agent not ready')), 15_000);
    createInterface({ input: child.stdout! }).on('line', (l) => { if (/python demo\.py/.test(l)) { clearTimeout(t); resolve(); } });
    child.once('exit', (c) => { clearTimeout(t); reject(new Error(`agent exited ${c}`)); });
  });
  return child;
}

/** SIGTERM → exit: the exit code and how long it took */
async function stopTimed(child: ChildProcess): Promise<{ code: number | null; ms: number }> {
  const t0 = performance.now();
  const exited = new Promise<number | null>((r) => child.once('exit', (c, sig) => { if (sig) console.log('exit by signal', sig); r(c); }));
  child.kill('SIGTERM');
  const timeout = new Promise<'hung'>((r) => setTimeout(() => r('hung'), 10_000));
  const code = await Promise.race([exited, timeout]);
  children.delete(child);
  if (code === 'hung') return { code: null, ms: Infinity };
  return { code, ms: performance.now() - t0 };
}

function dial(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1', allowHalfOpen: true }, () => resolve(s));
    s.once('error', reject);
    closers.push(() => s.destroy());
  });
}

/** MPyC party `j`'s own listener: counts the bytes it receives */
async function listener(port: number): Promise<{ server: Server; received: () => number }> {
  let n = 0;
  const server = createServer((s) => { s.on('data', (d: Buffer) => { n += d.length; }); s.on('error', () => {}); closers.push(() => s.destroy()); });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  closers.push(() => server.close());
  return { server, received: () => n };
}

describe('mpyc-agent up stops within 2 s of SIGTERM', () => {
  it('with no peer ever seen', async () => {
    const a = await up(0, await freeBase(2));
    const r = await stopTimed(a);
    expect(r.code).toBe(0);
    expect(r.ms).toBeLessThan(STOP_BOUND_MS);
  }, 30_000);

  it('after a local connection was opened and half-closed by the local side (CLOSE-WAIT on the agent)', async () => {
    const base = await freeBase(2);
    const a = await up(0, base);
    const s = await dial(base + 1);
    s.end();
    await new Promise((r) => setTimeout(r, 300));
    const r = await stopTimed(a);
    expect(r.code).toBe(0);
    expect(r.ms).toBeLessThan(STOP_BOUND_MS);
  }, 30_000);

  it('mid-transfer to a live peer, and after the peer agent was killed', async () => {
    const [b0, b1] = [await freeBase(2), await freeBase(2)];
    const mpyc1 = await listener(b1 + 1);
    const a0 = await up(0, b0);
    const a1 = await up(1, b1);
    const s = await dial(b0 + 1);
    const chunk = Buffer.alloc(64 * 1024, 7);
    let writing = true;
    const pump = (): void => { while (writing && s.write(chunk)); };
    s.on('drain', pump);
    s.on('error', () => { writing = false; });
    pump();
    const t0 = Date.now();
    while (mpyc1.received() < 1_000_000 && Date.now() - t0 < 15_000) await new Promise((r) => setTimeout(r, 50));
    expect(mpyc1.received()).toBeGreaterThan(1_000_000); // bytes are flowing through both agents
    const r1 = await stopTimed(a1); // the receiving agent, mid-transfer
    expect(r1.code).toBe(0);
    expect(r1.ms).toBeLessThan(STOP_BOUND_MS);
    // party 0's agent now has a dead peer and a local connection with unsent data
    await new Promise((r) => setTimeout(r, 500));
    const r0 = await stopTimed(a0);
    writing = false;
    expect(r0.code).toBe(0);
    expect(r0.ms).toBeLessThan(STOP_BOUND_MS);
  }, 60_000);

  it('after the peer agent died (SIGKILL) with a local connection open', async () => {
    const [b0, b1] = [await freeBase(2), await freeBase(2)];
    await listener(b1 + 1);
    const a0 = await up(0, b0);
    const a1 = await up(1, b1);
    const s = await dial(b0 + 1);
    s.write('hello');
    await new Promise((r) => setTimeout(r, 1_000));
    a1.kill('SIGKILL');
    children.delete(a1);
    s.write('into the void');
    await new Promise((r) => setTimeout(r, 500));
    const r = await stopTimed(a0);
    expect(r.code).toBe(0);
    expect(r.ms).toBeLessThan(STOP_BOUND_MS);
  }, 60_000);
});
