// Benchmark rounds of the peers (issue 16 goal 1), next to raw TCP and the agents:
//   holesail  one holesail proxy process per party (bench/holesail-proxy.ts), laid out like
//             one mpyc-agent per party: ping/bulk client → proxy A → hyperdht → proxy B →
//             server; the 3-party MPC through the same three proxies (party k > 0 is served
//             by its own proxy, every lower party reaches it through a client of its own proxy)
//   hyperdht  Noise + udx inside the two endpoint processes (bench/dht-peer.ts)
//   udx       a bare udx-native stream inside the two endpoint processes, no crypto
// hyperdht and holesail use the condition's local testnet (Fixture.bootstrap). A round
// whose connection stalls (a client exits with STALL_EXIT_CODE) throws StallError; the
// runner retries it and marks the row.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runNode, spawnNode, stop, type Proc } from './lib/proc.js';
import { counterDelta, rcvbufErrors } from './lib/procstat.js';
import { STALL_MESSAGE } from './lib/workloads.js';
import { freeBases, mpc, phase, pingAndBulk, startServer, type Fixture, type RoundResult, type Workload } from './systems.js';

const distBench = dirname(fileURLToPath(import.meta.url));
const HOLESAIL = join(distBench, 'holesail-proxy.js');
const DHT_PEER = join(distBench, 'dht-peer.js');
/** seconds without progress after which a peer connection counts as stalled */
export const STALL_SECONDS = 15;

/** start-to-start gap of the holesail MPC parties (listeners first) */
const HOLESAIL_MPC_STAGGER_MS = 1000;

export class StallError extends Error {}

/** Rethrows a child's failure as StallError when the child reported a stall. */
async function stallAware<T>(p: Promise<T>): Promise<T> {
  try { return await p; } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    if (msg.includes(STALL_MESSAGE)) throw new StallError(msg);
    throw e;
  }
}

/** DHT servers on a WAN without NAT must say they are reachable (see lib/holepunch.ts). */
const firewalledFlag = (f: Fixture): string[] => (f.hosts.ns.a ? ['--firewalled', 'false'] : []);

async function holesailProxy(name: string, f: Fixture, netns: string | null, serve: number[], connect: Array<{ key: string; port: number }>): Promise<{ proc: Proc; keys: Map<number, string> }> {
  const args = [HOLESAIL, '--bootstrap', f.bootstrap, ...firewalledFlag(f), ...serve.flatMap((p) => ['--serve', String(p)]), ...connect.flatMap((c) => ['--connect', `${c.key}@${c.port}`])];
  const proc = spawnNode(name, args, { netns });
  await proc.waitFor((r) => r.msg === 'ready', 60_000, 'holesail proxy ready');
  const keys = new Map(proc.lines.filter((l) => l.rec.msg === 'serving').map((l) => [Number(l.rec.port), String(l.rec.key)]));
  return { proc, keys };
}

export async function roundHolesail(w: Workload, f: Fixture): Promise<RoundResult> {
  const hosts = f.hosts;
  const res: RoundResult = { system: 'holesail' };
  const mark = phase(res);
  // the agents' port layout: party k's MPyC ports are base_k + j; the ping server sits at
  // base_1 (party 1 never listens there) and proxy A's ping listener at base_0
  const bases = await freeBases(3);
  const [b0, b1, b2] = bases as [number, number, number];
  let server: Proc | null = await startServer('127.0.0.1', b1, hosts.ns.b);
  const proxies: Proc[] = [];
  try {
    const p2 = await holesailProxy('holesail party 2', f, hosts.ns.c, [b2 + 2], []);
    proxies.push(p2.proc);
    const p1 = await holesailProxy('holesail party 1', f, hosts.ns.b, [b1, b1 + 1], [{ key: p2.keys.get(b2 + 2)!, port: b1 + 2 }]);
    proxies.push(p1.proc);
    const p0 = await holesailProxy('holesail party 0', f, hosts.ns.a, [], [
      { key: p1.keys.get(b1)!, port: b0 }, { key: p1.keys.get(b1 + 1)!, port: b0 + 1 }, { key: p2.keys.get(b2 + 2)!, port: b0 + 2 }]);
    proxies.push(p0.proc);
    mark('start');
    const pids = proxies.map((p) => p.child.pid!);
    await stallAware(pingAndBulk(res, w, '127.0.0.1', b0, hosts.ns.a, mark, { proxyPids: pids, receiverPid: p1.proc.child.pid! }, ['--stall', String(STALL_SECONDS)]));
    await stop(server.child);
    server = null;
    // holesail does not retry its local connect: a party dialled before its listener is up
    // sees its connection accepted, then closed, and the MPC fails; so the parties start
    // staggered, listeners first (holesail's first round is therefore not a start-up figure)
    await mpc(res, w, hosts, bases, () => '127.0.0.1', () => '127.0.0.1', pids, HOLESAIL_MPC_STAGGER_MS);
    mark('mpc');
  } finally {
    if (server) await stop(server.child);
    await Promise.all(proxies.map((p) => stop(p.child, 3000)));
    mark('stop');
  }
  return res;
}

/** hyperdht or udx-native in the endpoint processes: ping-pong and bulk only (no proxy, no MPC). */
export async function roundInProcess(mode: 'hyperdht' | 'udx', w: Workload, f: Fixture): Promise<RoundResult> {
  const hosts = f.hosts;
  const res: RoundResult = { system: mode };
  const mark = phase(res);
  const [ports] = await freeBases(1);
  const serverPort = ports!, clientPort = ports! + 1;
  const serverArgs = mode === 'hyperdht'
    ? ['--mode', 'hyperdht', '--bootstrap', f.bootstrap, ...firewalledFlag(f)]
    : ['--mode', 'udx', '--host', hosts.ip.b, '--port', String(serverPort), '--peer-host', hosts.ip.a, '--peer-port', String(clientPort)];
  const server = spawnNode(`${mode} server`, [DHT_PEER, 'server', ...serverArgs], { netns: hosts.ns.b });
  try {
    const listening = (await server.waitFor((r) => r.listening !== undefined, 30_000, `${mode} server listening`)).rec.listening;
    const clientArgs = mode === 'hyperdht'
      ? ['--mode', 'hyperdht', '--bootstrap', f.bootstrap, '--key', String(listening)]
      : ['--mode', 'udx', '--host', hosts.ip.a, '--port', String(clientPort), '--peer-host', hosts.ip.b, '--peer-port', String(serverPort)];
    mark('start');
    const common = [...clientArgs, '--timeout', String(STALL_SECONDS)];
    const ping = await stallAware(runNode(`${mode} ping`, [DHT_PEER, 'ping', ...common, '--n', String(w.pingN), '--warm', String(w.pingWarm)], 300_000, { netns: hosts.ns.a }));
    res.pingUs = ping.samplesUs as number[];
    mark('ping');
    if (w.bulkBytes > 0) {
      const drops = counterDelta(() => rcvbufErrors([server.child.pid!]));
      const bulk = await stallAware(runNode(`${mode} bulk`, [DHT_PEER, 'bulk', ...common, '--bytes', String(w.bulkBytes), '--seconds', String(w.bulkSeconds)], 180_000, { netns: hosts.ns.a }));
      res.bulkMbit = bulk.mbitPerS as number;
      res.rcvbufErrors = drops();
      mark('bulk');
    }
  } finally {
    await stop(server.child, 3000);
  }
  return res;
}
