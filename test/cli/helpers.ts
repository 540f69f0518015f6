// Running the built mpyc-agent binary in tests: one-shot commands, daemons whose output is
// read line by line, and a session with its key files made without the CLI.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { writeFileSync } from 'node:fs';
import { writeKeyFile } from '../../src/common/keys.js';
import { PeerKey } from '../../src/common/peer-key.js';
import { serializeSession } from '../../src/agent/session-file.js';
import type { RelayAddress } from '../../src/agent/types.js';

export const agentCli = join(import.meta.dirname, '../../dist/src/agent/cli.js');
export const relayCli = join(import.meta.dirname, '../../dist/src/relay/cli.js');

export interface RunResult { code: number; stdout: string; stderr: string }

/** Runs `node [nodeArgs] dist/src/agent/cli.js args` to the end. */
export function runCli(args: string[], o: { env?: NodeJS.ProcessEnv; nodeArgs?: string[]; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [...(o.nodeArgs ?? []), agentCli, ...args], { timeout: o.timeoutMs ?? 20_000, env: o.env ?? process.env }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

/** A long-running command; stdout and stderr kept as lines. Always stop() it (afterEach/finally). */
export class Daemon {
  readonly child: ChildProcess;
  readonly out: string[] = [];
  readonly err: string[] = [];
  readonly exited: Promise<number | null>;
  private waiters: (() => void)[] = [];
  private closed = false;

  constructor(command: string, args: string[], env: NodeJS.ProcessEnv = process.env) {
    this.child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    // 'close' (not 'exit'): every line of its output has been read by then
    this.exited = new Promise((r) => this.child.once('close', (code, signal) => { this.closed = true; r(code ?? (signal ? -1 : null)); this.wake(); }));
    for (const [stream, lines] of [[this.child.stdout!, this.out], [this.child.stderr!, this.err]] as const) {
      createInterface({ input: stream }).on('line', (l) => { lines.push(l); this.wake(); });
    }
  }

  static agent(args: string[], env?: NodeJS.ProcessEnv): Daemon {
    return new Daemon(process.execPath, [agentCli, ...args], env);
  }

  private wake(): void { for (const w of this.waiters.splice(0)) w(); }

  /** JSON log lines on stderr (anything else skipped) */
  records(): Record<string, unknown>[] {
    return this.err.flatMap((l) => { try { const v = JSON.parse(l) as unknown; return v && typeof v === 'object' ? [v as Record<string, unknown>] : []; } catch { return []; } });
  }

  /** Resolves once pred holds (checked on every new line and at exit); rejects after ms with what was seen. */
  async until<T>(pred: () => T | undefined | false, ms: number, what: string): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = pred();
      if (v) return v;
      if (this.closed) throw new Error(`${what}: process exited (${this.child.exitCode ?? this.child.signalCode}); stderr:\n${this.err.slice(-10).join('\n')}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${what}: not within ${ms} ms; stderr:\n${this.err.slice(-10).join('\n')}`);
      await new Promise<void>((r) => { const t = setTimeout(r, left); this.waiters.push(() => { clearTimeout(t); r(); }); });
    }
  }

  /** JSON log lines on stdout (mpyc-relay logs there) */
  outRecords(): Record<string, unknown>[] {
    return this.out.flatMap((l) => { try { const v = JSON.parse(l) as unknown; return v && typeof v === 'object' ? [v as Record<string, unknown>] : []; } catch { return []; } });
  }

  record(msg: string, ms = 15_000, from = 0): Promise<Record<string, unknown>> {
    return this.until(() => this.records().slice(from).find((r) => r.msg === msg), ms, `log line "${msg}"`);
  }

  /** Sends SIGKILL if still running; resolves when gone. */
  async stop(): Promise<void> {
    if (!this.closed) this.child.kill('SIGKILL');
    await this.exited;
  }
}

export interface RelayProcess { daemon: Daemon; address: string; publicKey: string; udpPort: number; httpPort: number }

/** `mpyc-relay serve` on a loopback address (ephemeral ports) with a fresh key in dir; stop() its daemon. */
export async function startRelayProcess(dir: string, name: string, flags: string[] = [], host = '127.0.0.1'): Promise<RelayProcess> {
  const key = join(dir, `${name}.key`);
  const kp = writeKeyFile(key);
  kp.privateKey.fill(0);
  const h = host.includes(':') ? `[${host}]` : host;
  const daemon = new Daemon(process.execPath, [relayCli, 'serve', '--key', key, '--udp', `${h}:0`, '--http', `${h}:0`, ...flags]);
  const listening = await daemon.until(() => [...daemon.outRecords(), ...daemon.records()].find((r) => r.msg === 'listening'), 15_000, `${name} listening`);
  return { daemon, address: String(listening.relayAddress), publicKey: PeerKey.fromBytes(kp.publicKey).text, udpPort: Number(listening.udpPort), httpPort: Number(listening.httpPort) };
}

/** The relay address a session file holds for a relay process. */
export function relayAddressOf(r: RelayProcess): RelayAddress {
  return { publicKey: r.publicKey, host: '127.0.0.1', udpPort: r.udpPort, httpPort: r.httpPort };
}

/** m parties' key files (0600) and one session file naming them and `relay` (or several relays), in dir. */
export function makeSession(dir: string, name: string, relay: RelayAddress | RelayAddress[], m: number, names: string[] = []): { session: string; keys: string[]; publicKeys: string[] } {
  const keys: string[] = [];
  const publicKeys: string[] = [];
  for (let i = 0; i < m; i++) {
    const key = join(dir, `${name}-${i}.key`);
    const kp = writeKeyFile(key);
    kp.privateKey.fill(0);
    keys.push(key);
    publicKeys.push(PeerKey.fromBytes(kp.publicKey).text);
  }
  const session = join(dir, `${name}.json`);
  writeFileSync(session, serializeSession({ basePort: 11365, relays: Array.isArray(relay) ? relay : [relay], parties: publicKeys.map((publicKey, i) => ({ publicKey, ...(names[i] ? { name: names[i] } : {}) })) }));
  return { session, keys, publicKeys };
}

/** f() until it gives a value (errors count as not yet), every 100 ms, at most ms. */
export async function until<T>(what: string, ms: number, f: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
