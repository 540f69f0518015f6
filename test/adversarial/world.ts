// The adversarial tests' world: a real mpyc-relay and two real `mpyc-agent up` processes
// (the built CLIs) on loopback, in a three-party session whose third key belongs to the
// attacker. Party 0 is the victim (default mode: it accepts direct UDP from anyone), party
// 1 its honest peer (--relay-only), so the legitimate pair's traffic crosses the relay.
// ADVERSARIAL_TARGET_DIST=<dir> runs the relay and agents of another build (e.g. main
// before the hardening) while the attacker stays this build's.
import { execFileSync } from 'node:child_process';
import * as dgram from 'node:dgram';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { spawnNode, stop, type Proc } from '../../bench/lib/proc.js';
import { writeKeyFile } from '../../src/common/keys.js';
import { PeerKey } from '../../src/common/peer-key.js';
import { freeBases } from '../../src/common/ports.js';
import { serializeSession } from '../../src/agent/session-file.js';
import type { RelayAddress } from '../../src/agent/types.js';
import { rawUdpUnavailable, type Endpoint } from '../../src/tools/attacker/raw-udp.js';

const REPO = resolve(import.meta.dirname, '../..');
export const TARGET_DIST = resolve(process.env.ADVERSARIAL_TARGET_DIST ?? join(REPO, 'dist'));
export const OWN_DIST = join(REPO, 'dist');
const RELAY_CLI = join(TARGET_DIST, 'src/relay/cli.js');
const AGENT_CLI = join(TARGET_DIST, 'src/agent/cli.js');
/** the parties of the session: victim, honest peer, attacker */
export const VICTIM = 0;
export const PEER = 1;
export const ATTACKER = 2;
/** party j's listener is at localBase + j: three parties, a range of 3 ports each */
const PARTIES = 3;

export interface AgentProc { proc: Proc; index: number; key: PeerKey; localBase: number; udp: Endpoint; metricsPort: number }

export interface World {
  dir: string;
  relay: { proc: Proc; udp: Endpoint; http: Endpoint; key: string; metricsUrl: string };
  victim: AgentProc;
  peer: AgentProc;
  attackerKeyFile: string;
  attackerKey: PeerKey;
  /** the malicious party's socket address, the same for every attack of a world */
  attackerUdp: Endpoint;
  stop(): Promise<void>;
}

export interface WorldOptions {
  /** extra `mpyc-relay serve` flags (a limit lowered for one attack) */
  relayFlags?: string[];
}

/** For beforeAll: the built CLIs must exist (npm test builds first). */
export function requireBuiltClis(): void {
  for (const f of [RELAY_CLI, AGENT_CLI, join(OWN_DIST, 'src/tools/attacker/cli.js')]) if (!existsSync(f)) throw new Error(`${f} missing: npm test builds first (npx tsc -p tsconfig.json)`);
}

function freeTcpPort(): Promise<number> {
  return new Promise((res) => { const s = createServer(); s.listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => res(p)); }); });
}

function freeUdpPort(): Promise<number> {
  return new Promise((res) => { const s = dgram.createSocket('udp4'); s.bind(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => res(p)); }); });
}

async function startAgent(dir: string, session: string, index: number, key: PeerKey, localBase: number, extra: string[]): Promise<AgentProc> {
  const udpPort = await freeUdpPort();
  const metricsPort = await freeTcpPort();
  const proc = spawnNode(`agent${index}`, [AGENT_CLI, 'up', session, '--key', join(dir, `party${index}.key`), '--bind', '127.0.0.1', '--udp-port', String(udpPort),
    '--local-base', String(localBase), '--control', join(dir, `agent${index}.sock`), '--metrics', `127.0.0.1:${metricsPort}`,
    '--relay-transport', 'udp', '--log-level', 'info', ...extra]);
  await proc.waitFor((r) => r.msg === 'ready', 20_000, 'agent ready');
  return { proc, index, key, localBase, udp: { address: '127.0.0.1', port: udpPort }, metricsPort };
}

export async function startWorld(o: WorldOptions = {}): Promise<World> {
  const dir = mkdtempSync(join(tmpdir(), 'mpyc-adversarial-'));
  const procs: Proc[] = [];
  const stopAll = async (): Promise<void> => {
    await Promise.all(procs.map((p) => stop(p.child, 1000)));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const relayKeyFile = join(dir, 'relay.key');
    execFileSync(process.execPath, [RELAY_CLI, 'keygen', '--out', relayKeyFile], { stdio: 'ignore' });
    const relayProc = spawnNode('relay', [RELAY_CLI, 'serve', '--key', relayKeyFile, '--udp', '127.0.0.1:0', '--http', '127.0.0.1:0', '--log-level', 'info', ...(o.relayFlags ?? [])]);
    procs.push(relayProc);
    const { rec } = await relayProc.waitFor((r) => r.msg === 'listening', 15_000, 'relay listening');
    const relayAddress = String(rec.relayAddress);
    const relayKey = relayAddress.split('@')[0]!;
    const udpPort = Number(rec.udpPort);
    const httpPort = Number(rec.httpPort);
    const keys = [0, 1, 2].map((i) => PeerKey.fromBytes(writeKeyFile(join(dir, `party${i}.key`)).publicKey));
    const relay: RelayAddress = { publicKey: relayKey, host: '127.0.0.1', udpPort, httpPort };
    const session = join(dir, 'session.json');
    writeFileSync(session, serializeSession({ basePort: 11365, relays: [relay], parties: keys.map((k, i) => ({ publicKey: k.text, name: `p${i}` })) }));
    const [b0, b1] = await freeBases(2, PARTIES);
    const victim = await startAgent(dir, session, VICTIM, keys[VICTIM]!, b0!, []);
    procs.push(victim.proc);
    const peer = await startAgent(dir, session, PEER, keys[PEER]!, b1!, ['--relay-only']);
    procs.push(peer.proc);
    return {
      dir, victim, peer,
      relay: { proc: relayProc, udp: { address: '127.0.0.1', port: udpPort }, http: { address: '127.0.0.1', port: httpPort }, key: relayKey, metricsUrl: `http://127.0.0.1:${httpPort}/metrics` },
      attackerKeyFile: join(dir, `party${ATTACKER}.key`), attackerKey: keys[ATTACKER]!,
      attackerUdp: { address: '127.0.0.1', port: await freeUdpPort() },
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** One Prometheus sample (the sum over every label set matching `labels`), 0 when absent. */
export async function metric(url: string, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(url)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_]+)(\{[^}]*\})? ([-0-9.e+]+)$/.exec(line);
    if (!m || m[1] !== name || (labels && !(m[2] ?? '').includes(labels))) continue;
    sum += Number(m[3]);
  }
  return sum;
}

export const agentMetricsUrl = (a: AgentProc): string => `http://127.0.0.1:${a.metricsPort}/metrics`;

/** Waits until `pred` holds (polled every 50 ms); false after `ms`. */
export async function eventually(pred: () => Promise<boolean> | boolean, ms: number): Promise<boolean> {
  const t0 = performance.now();
  for (;;) {
    if (await pred()) return true;
    if (performance.now() - t0 > ms) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A fresh world for one attack (an attack may leave its victim damaged), always stopped. */
export async function withWorld<T>(o: WorldOptions, fn: (w: World) => Promise<T>): Promise<T> {
  const w = await startWorld(o);
  try { return await fn(w); } finally { await w.stop(); }
}

/** Why forged-source tests cannot run here (said loudly once per file), or null. */
export function noRawSpoofing(): string | null {
  const why = rawUdpUnavailable();
  if (why) process.stdout.write(`*** ADVERSARIAL SPOOFING TESTS SKIPPED: ${why} ***\n`);
  return why;
}
