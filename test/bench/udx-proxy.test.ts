// bench/udx-proxy.ts end to end (from dist/, like the bench runs it): two proxy processes
// carry TCP connections over sealed udx-native streams — bytes intact both ways, a
// half-close passed on (the bulk workload's count comes back after the sender's FIN), the
// local connect retried until the listener is up; and the finding that udx-native has no
// back-pressure from a stopped reader.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { freeBase } from '../tools/ports.js';

const PROXY = join(import.meta.dirname, '../../dist/bench/udx-proxy.js');
const live: ChildProcess[] = [];
/** how long the sender pushes into a stopped reader, and more than every buffer on the way holds */
const BACKLOG_WINDOW_MS = 4000;
const BACKLOG_BOUND = 48e6;
const servers: Server[] = [];

afterEach(() => {
  for (const c of live.splice(0)) c.kill('SIGKILL');
  for (const s of servers.splice(0)) s.close();
});

const rssBytes = (pid: number): number => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;

async function proxies(): Promise<{ base0: number; base1: number; pids: number[] }> {
  const [base0, base1, udp] = [await freeBase(3), await freeBase(3), await freeBase(3)];
  const key = randomBytes(32).toString('hex');
  const start = (k: number, base: number): Promise<void> => {
    const c = spawn(process.execPath, [PROXY, '--index', String(k), '--key', key, '--bind', `127.0.0.1:${udp + k}`, '--local-base', String(base),
      '--peer', `${1 - k}=127.0.0.1:${udp + 1 - k}`], { stdio: ['ignore', 'pipe', 'inherit'] });
    live.push(c);
    return new Promise((resolve, reject) => {
      createInterface({ input: c.stdout! }).on('line', (l) => { if (l.includes('"ready"')) resolve(); });
      c.once('exit', (code) => reject(new Error(`udx-proxy ${k} exited ${code}`)));
    });
  };
  await Promise.all([start(0, base0), start(1, base1)]);
  return { base0, base1, pids: live.slice(-2).map((c) => c.pid!) };
}

/** party 1's stand-in listener at base1+1: echoes, and on the client's FIN answers the byte count */
function listen(port: number): Promise<void> {
  const srv = createServer({ allowHalfOpen: true }, (s) => {
    let n = 0;
    s.on('data', (d: Buffer) => { n += d.length; s.write(d); });
    s.on('end', () => s.end(`count ${n}`));
  });
  servers.push(srv);
  return new Promise((resolve) => srv.listen(port, '127.0.0.1', () => resolve()));
}

function collect(s: Socket): Promise<Buffer> {
  const parts: Buffer[] = [];
  s.on('data', (d: Buffer) => parts.push(d));
  return new Promise((resolve, reject) => { s.on('end', () => resolve(Buffer.concat(parts))); s.on('error', reject); });
}

describe('udx-proxy bench system', () => {
  it('carries bytes both ways intact, passes the half-close on, and retries the local connect', async () => {
    const { base0, base1 } = await proxies();
    // dial before party 1's listener exists: the far proxy retries its local connect
    const c = connect({ host: '127.0.0.1', port: base0 + 1, allowHalfOpen: true });
    const got = collect(c);
    const payload = randomBytes(3_000_000);
    await new Promise((r) => setTimeout(r, 150));
    await listen(base1 + 1);
    c.write(payload.subarray(0, 100));
    c.write(payload.subarray(100));
    c.end();
    const back = await got;
    expect(back.length).toBe(payload.length + `count ${payload.length}`.length);
    expect(back.subarray(0, payload.length).equals(payload)).toBe(true);
    expect(back.subarray(payload.length).toString()).toBe(`count ${payload.length}`);
  }, 30_000);

  // a finding for docs/native-transport.md, not a property of ours: udx-native's Node
  // binding never calls libudx's udx_stream_read_stop and gives libudx no read-buffer size,
  // so a paused stream keeps receiving and advertising its full 4 MB window; the far proxy
  // pauses the stream but buffers without bound what the sender keeps sending
  it('FINDING: udx-native carries no back-pressure — with the reader stopped, the far proxy buffers everything', async () => {
    const { base0, base1, pids } = await proxies();
    let reader: Socket | null = null;
    const srv = createServer((s) => { reader = s; s.pause(); });
    servers.push(srv);
    await new Promise<void>((r) => srv.listen(base1 + 1, '127.0.0.1', () => r()));
    const c = connect({ host: '127.0.0.1', port: base0 + 1 });
    await new Promise((r) => c.once('connect', r));
    const rss0 = rssBytes(pids[1]!);
    const chunk = Buffer.alloc(64 * 1024);
    let written = 0;
    const pump = (): void => { while (c.write(chunk)) written += chunk.length; written += chunk.length; };
    c.on('drain', pump);
    pump();
    await new Promise((r) => setTimeout(r, BACKLOG_WINDOW_MS));
    // every buffer on the way (kernel socket buffers, udx's 4 MB window) holds some tens of
    // MB at most: more than that was taken by a receiver that reads nothing
    expect(written).toBeGreaterThan(BACKLOG_BOUND);
    expect(rssBytes(pids[1]!) - rss0).toBeGreaterThan(BACKLOG_BOUND / 2);
    expect(reader).not.toBeNull();
    c.destroy();
  }, 30_000);
});
