// The built binaries (dist/) as users run them: mpyc-relay serve, mpyc-agent invite/join,
// join --up. Every process and the scratch directory are cleaned up by cleanup().
import { expect } from 'vitest';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join as pathJoin } from 'node:path';
import { createInterface } from 'node:readline';
import { spawnNode, stop, type Proc } from '../../bench/lib/proc.js';

const dist = pathJoin(import.meta.dirname, '../../dist/src');
export const agentCli = pathJoin(dist, 'agent/cli.js');
export const relayCli = pathJoin(dist, 'relay/cli.js');

export interface Run { code: number; stdout: string; stderr: string }
export interface CliRelay { proc: Proc; address: string; httpPort: number }

export class CliWorld {
  readonly dir = mkdtempSync(pathJoin(tmpdir(), 'lobby-cli-'));
  private readonly children: ChildProcess[] = [];
  private readonly daemons: Proc[] = [];

  /** One mpyc-agent command to completion (cwd: the scratch directory unless given). */
  agent(args: string[], cwd = this.dir, timeoutMs = 30_000): Promise<Run> {
    return new Promise((resolve) => {
      execFile(process.execPath, [agentCli, ...args], { cwd, timeout: timeoutMs }, (err, stdout, stderr) =>
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
    });
  }

  async startRelay(name: string, flags: string[] = []): Promise<CliRelay> {
    const key = pathJoin(this.dir, `${name}.key`);
    await new Promise<void>((r) => execFile(process.execPath, [relayCli, 'keygen', '--out', key], () => r()));
    const proc = spawnNode(name, [relayCli, 'serve', '--key', key, '--udp', '127.0.0.1:0', '--http', '127.0.0.1:0', ...flags]);
    this.daemons.push(proc);
    const { rec } = await proc.waitFor((r) => r.msg === 'listening', 15_000, 'relay listening');
    return { proc, address: rec.relayAddress as string, httpPort: rec.httpPort as number };
  }

  async createInvite(address: string, parties: number, extra: string[] = []): Promise<string> {
    const r = await this.agent(['invite', 'create', '--relay', address, '--parties', String(parties), '--json', ...extra]);
    expect(r.code, r.stderr).toBe(0);
    return (JSON.parse(r.stdout) as { invite: string }).invite;
  }

  /** `join INVITE ... --up -- UP-OPTIONS` in partyDir: resolves when the agent it started logs "ready". */
  joinUp(invite: string, name: string, partyDir: string, localBase: number): Promise<{ child: ChildProcess; stdout: () => string }> {
    mkdirSync(partyDir, { recursive: true });
    const child = spawn(process.execPath, [agentCli, 'join', invite, '--name', name, '--create-key', '--key', 'party.key', '--out', 'session.json', '--up',
      '--', '--bind', '127.0.0.1', '--local-base', String(localBase), '--control', pathJoin(partyDir, 'agent.sock'), '--log-level', 'info'],
    { cwd: partyDir, stdio: ['ignore', 'pipe', 'pipe'] });
    this.children.push(child);
    let out = '';
    let err = '';
    let ready = false;
    // stdout and stderr are separate pipes: the MPyC line on stdout may arrive after the
    // 'ready' log line on stderr, so wait for both
    const mpycLine = /party \d+ of \d+; run MPyC/;
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${name}: no ready line and MPyC command line\n${err.slice(-2000)}`)), 60_000);
      const check = (): void => { if (ready && mpycLine.test(out)) { clearTimeout(t); resolve({ child, stdout: () => out }); } };
      child.stdout!.on('data', (d: Buffer) => { out += String(d); check(); });
      child.once('exit', (c) => { clearTimeout(t); reject(new Error(`${name}: exited ${c}\n${err.slice(-2000)}`)); });
      createInterface({ input: child.stderr! }).on('line', (l) => {
        err += `${l}\n`;
        if (l.startsWith('{') && (JSON.parse(l) as { msg?: string }).msg === 'ready') { ready = true; check(); }
      });
    });
  }

  async cleanup(): Promise<void> {
    for (const c of this.children) if (c.exitCode === null) c.kill('SIGKILL');
    await Promise.all(this.daemons.map((d) => stop(d.child)));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export const fingerprintOf = (stdout: string): string => /Fingerprint: ([A-Z2-7-]+)/.exec(stdout)?.[1] ?? 'none';
