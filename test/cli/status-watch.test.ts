// `mpyc-agent status` (built binary) against a control socket served by this test:
// --json rounding, --watch refreshing, Ctrl-C, and an agent that goes away.
import { afterEach, describe, expect, it } from 'vitest';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startControlServer, type ControlServer } from '../../src/agent/control.js';
import type { AgentStatus } from '../../src/agent/types.js';
import { Daemon, agentCli, runCli } from './helpers.js';

const KEY = Buffer.alloc(32, 7).toString('base64');
const dirs: string[] = [];
const servers: ControlServer[] = [];
const daemons: Daemon[] = [];
afterEach(async () => {
  for (const d of daemons.splice(0)) await d.stop();
  for (const s of servers.splice(0)) await s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A control socket whose status says how often it has been asked (uptimeMs = 1000 × count + a fraction). */
async function fakeAgent(): Promise<{ path: string; asked: () => number; server: ControlServer }> {
  const dir = mkdtempSync(join(tmpdir(), 'watch-'));
  chmodSync(dir, 0o700);
  dirs.push(dir);
  const path = join(dir, 'agent.sock');
  let n = 0;
  const status = (): AgentStatus => {
    n++;
    return {
      ownIndex: 0, publicKey: KEY, mpycCommand: 'python demo.py -M2 -I 0',
      relay: { address: `${KEY}@127.0.0.1:3478/8080`, transport: 'udp', registered: true },
      localAddresses: ['127.0.0.1'], udpPort: 40000, uptimeMs: 1000 * n + 0.123456,
      peers: [{ index: 1, publicKey: KEY, state: 'direct', path: { kind: 'direct', address: '127.0.0.1:40001', lan: true },
        rttMs: 0.4567891, bytesSent: 1000, bytesReceived: 2000, handshakeAgeMs: 12_345.6789, pathAgeMs: 99.99, streams: 2 }],
    };
  };
  const server = await startControlServer(path, { status });
  servers.push(server);
  return { path, asked: () => n, server };
}

describe('mpyc-agent status', () => {
  it('--json rounds RTTs to 0.01 ms and other fractional milliseconds to 0.1 ms, keeping integers', async () => {
    const { path } = await fakeAgent();
    const r = await runCli(['status', '--json', '--control', path]);
    expect(r.code).toBe(0);
    const st = JSON.parse(r.stdout) as AgentStatus;
    expect(st.uptimeMs).toBe(1000.1);
    expect(st.peers[0]!.rttMs).toBe(0.46);
    expect(st.peers[0]!.handshakeAgeMs).toBe(12345.7);
    expect(st.peers[0]!.pathAgeMs).toBe(100);
    expect(st.peers[0]!.bytesSent).toBe(1000);
    expect(r.stdout).not.toMatch(/\d\.\d{3,}/);
  });

  it('--watch --json prints one fresh status per interval until Ctrl-C, then exits 0', async () => {
    const { path, asked } = await fakeAgent();
    const d = Daemon.agent(['status', '--watch', '--json', '--interval', '0.1', '--control', path]);
    daemons.push(d);
    await d.until(() => d.out.length >= 3, 10_000, 'three snapshots');
    const uptimes = d.out.slice(0, 3).map((l) => (JSON.parse(l) as AgentStatus).uptimeMs);
    expect(uptimes[1]).toBeGreaterThan(uptimes[0]!); // each line is a new answer, not a repeat
    expect(uptimes[2]).toBeGreaterThan(uptimes[1]!);
    expect(asked()).toBeGreaterThanOrEqual(3);
    d.child.kill('SIGINT');
    expect(await d.exited).toBe(0);
    expect(d.err).toEqual([]);
  });

  it('--watch exits 1 with a message when the agent goes away', async () => {
    const { path, server } = await fakeAgent();
    const d = Daemon.agent(['status', '--watch', '--interval', '0.1', '--control', path]);
    daemons.push(d);
    await d.until(() => d.out.filter((l) => l.startsWith('PEER')).length >= 2, 10_000, 'two tables');
    expect(d.out.find((l) => l.startsWith('mpyc-agent status  every 0.1s'))).toMatch(/\d\d:\d\d:\d\d\.\d{3} {2}\(Ctrl-C to quit\)$/);
    expect(d.out.join('\n')).not.toContain('\x1b'); // not a terminal: no screen control, snapshots one after another
    await server.close();
    const t0 = Date.now();
    expect(await d.exited).toBe(1);
    expect(Date.now() - t0).toBeLessThan(5000); // within a few intervals, not a timeout
    expect(d.err.join('\n')).toMatch(/^mpyc-agent: the agent went away \(.*agent\.sock: cannot connect \((ENOENT|ECONNREFUSED)\)/);
  });

  it('--watch on a terminal redraws the screen', async () => {
    const { path } = await fakeAgent();
    const command = [process.execPath, agentCli, 'status', '--watch', '--interval', '0.1', '--control', path].map((a) => `'${a}'`).join(' ');
    const d = new Daemon('script', ['-qfec', command, '/dev/null']);
    daemons.push(d);
    await d.until(() => d.out.join('\n').split('\x1b[H\x1b[2J').length >= 3, 10_000, 'two redraws');
  });
});
