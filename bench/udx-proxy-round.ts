// One benchmark round of the udx-proxy system (bench/udx-proxy.ts): three proxy processes,
// one per party, laid out exactly like the agents in systems.ts roundAgent (party k's
// proxy listens on 127.0.0.1:base_k + j for peer j and delivers to base_k + k), so the same
// ping/bulk clients and the same 3-party MPC run through them; their CPU is the cost.
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnNode, stop, type Proc } from './lib/proc.js';
import { freeBases, mpc, phase, pingAndBulk, startServer, type Fixture, type RoundResult, type Workload } from './systems.js';

const UDX_PROXY = join(dirname(fileURLToPath(import.meta.url)), 'udx-proxy.js');

export async function roundUdxProxy(w: Workload, f: Fixture): Promise<RoundResult> {
  const hosts = f.hosts;
  const res: RoundResult = { system: 'udx-proxy' };
  const mark = phase(res);
  const [b0, b1, b2, udp] = (await freeBases(4)) as [number, number, number, number];
  const bases = [b0, b1, b2];
  const ns = [hosts.ns.a, hosts.ns.b, hosts.ns.c];
  const ip = [hosts.ip.a, hosts.ip.b, hosts.ip.c];
  const key = randomBytes(32).toString('hex');
  // the ping/bulk server stands in for party 1's MPyC listener, like in roundAgent
  let server: Proc | null = await startServer('127.0.0.1', b1 + 1, hosts.ns.b);
  const proxies: Proc[] = [];
  try {
    for (let k = 0; k < 3; k++) {
      const peers = [0, 1, 2].filter((j) => j !== k).flatMap((j) => ['--peer', `${j}=${ip[j]}:${udp + j}`]);
      proxies.push(spawnNode(`udx-proxy ${k}`, [UDX_PROXY, '--index', String(k), '--key', key, '--bind', `${ip[k]}:${udp + k}`, '--local-base', String(bases[k]), ...peers], { netns: ns[k] }));
    }
    await Promise.all(proxies.map((p) => p.waitFor((r) => r.msg === 'ready', 10_000, 'udx-proxy ready')));
    mark('start');
    const pids = proxies.map((p) => p.child.pid!);
    await pingAndBulk(res, w, '127.0.0.1', b0 + 1, hosts.ns.a, mark, { proxyPids: pids, receiverPid: pids[1]! });
    await stop(server.child);
    server = null;
    // the proxies retry their local connect like the agents: the parties start together
    await mpc(res, w, hosts, bases, () => '127.0.0.1', () => '127.0.0.1', pids);
    mark('mpc');
  } finally {
    if (server) await stop(server.child);
    await Promise.all(proxies.map((p) => stop(p.child, 3000)));
    mark('stop');
  }
  return res;
}
