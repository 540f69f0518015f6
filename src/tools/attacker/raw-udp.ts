// The off-path spoofer's sending half: datagrams with any loopback source address:port
// (the relay's, a registered agent's, random ones), which no ordinary socket can send. The
// C helper raw-udp.c writes whole IP packets through a raw socket (root); this file builds
// it with the machine's cc once per source version and feeds it records on stdin.
// Loopback only: both ends must be in 127.0.0.0/8 (checked here and again in the helper).
import { createHash } from 'node:crypto';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Endpoint { address: string; port: number }

/** record header: src ip (4) | src port (2) | dst ip (4) | dst port (2) | repeat (2) | length (2) */
const RECORD_HEADER = 16;
/** the helper sends one record at most this many times (u16 field) */
export const MAX_REPEAT = 0xffff;

/** Why raw sending is impossible here, or null when it works (root and a C compiler). */
export function rawUdpUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'not root (raw sockets need CAP_NET_RAW)';
  try { execFileSync('cc', ['--version'], { stdio: 'ignore' }); } catch { return 'no C compiler (cc)'; }
  return null;
}

function sourcePath(): string {
  // next to this file's TypeScript source; from dist/src/tools/attacker/ walk up to the repository
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    for (const c of [join(dir, 'raw-udp.c'), join(dir, 'src', 'tools', 'attacker', 'raw-udp.c')]) if (existsSync(c)) return c;
    dir = resolve(dir, '..');
  }
  throw new Error('raw-udp.c not found');
}

function build(): string {
  const src = sourcePath();
  const hash = createHash('sha256').update(readFileSync(src)).digest('hex').slice(0, 16);
  const cacheDir = join(tmpdir(), 'mpyc-attacker-bin');
  const out = join(cacheDir, `raw-udp-${hash}`);
  if (existsSync(out)) return out;
  mkdirSync(cacheDir, { recursive: true });
  // a unique name, then rename: parallel test files may build at once
  const tmp = `${out}.${process.pid}.tmp`;
  execFileSync('cc', ['-O2', '-Wall', '-o', tmp, src], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 60_000 });
  renameSync(tmp, out);
  return out;
}

function ipv4Loopback(address: string): Buffer {
  const parts = address.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255) || parts[0] !== 127) {
    throw new RangeError(`raw-udp: ${address} is not an IPv4 loopback address (127.0.0.0/8 only)`);
  }
  return Buffer.from(parts);
}

export interface RawUdpResult { sent: number; errors: number; refused: number }

export class RawUdp {
  private readonly done: Promise<RawUdpResult>;

  private constructor(private readonly child: ChildProcess) {
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => { out += String(d); });
    child.stderr!.on('data', (d: Buffer) => { err += String(d); });
    child.stdin!.on('error', () => { /* helper gone: its exit says why */ });
    this.done = new Promise((res, rej) => child.once('exit', (code) => {
      if (code === 0) res(JSON.parse(out.trim().split('\n').at(-1)!) as RawUdpResult);
      else rej(new Error(`raw-udp exited ${code}: ${err.trim()}`));
    }));
  }

  static open(): RawUdp {
    return new RawUdp(spawn(build(), [], { stdio: ['pipe', 'pipe', 'pipe'] }));
  }

  /**
   * Queues one datagram from `from` to `to`, sent `repeat` times. Resolves once the pipe
   * took it (back-pressure: a flood loop awaiting this never buffers without bound).
   */
  send(from: Endpoint, to: Endpoint, payload: Uint8Array, repeat = 1): Promise<void> {
    if (!Number.isInteger(repeat) || repeat < 1 || repeat > MAX_REPEAT) throw new RangeError(`repeat must be 1..${MAX_REPEAT}`);
    if (payload.length > 0xffff) throw new RangeError('payload too long');
    const rec = Buffer.allocUnsafe(RECORD_HEADER + payload.length);
    ipv4Loopback(from.address).copy(rec, 0);
    rec.writeUInt16BE(from.port, 4);
    ipv4Loopback(to.address).copy(rec, 6);
    rec.writeUInt16BE(to.port, 10);
    rec.writeUInt16BE(repeat, 12);
    rec.writeUInt16BE(payload.length, 14);
    rec.set(payload, RECORD_HEADER);
    return new Promise((r) => { if (this.child.stdin!.write(rec)) r(); else this.child.stdin!.once('drain', () => r()); });
  }

  /** Ends the input; resolves with what the helper sent. */
  close(): Promise<RawUdpResult> {
    this.child.stdin!.end();
    return this.done;
  }

  /** Stops at once (failure paths). */
  kill(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}
