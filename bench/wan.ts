// The emulated WAN of the benchmark, built with the lab harness (src/lab): four hosts on
// the lab's "Internet" router, each in its own network namespace:
//   a, b, c  the three parties: link delay 5 ms each way, so party↔party is 10 ms one way
//            (20 ms RTT: two delayed links); loss L % on each link and direction, so a
//            party↔party direction loses ≈ 2 L % (two links)
//   r        the relay: undelayed, lossless link, so a relayed path a→r→b crosses exactly
//            the same two delayed, lossy links as the direct path a→b (same RTT, same loss)
// Every system (raw TCP, agents, WebRTC) crosses the same links: the impairment is
// applied identically to all. Raw-TCP MPC parties dial one alias address (MPC_ALIAS) that
// nft DNATs, per destination port, to the right party (mpyc-sim dials a single host).
import { Lab } from '../src/lab/lab.js';
import type { LabSpec } from '../src/lab/spec.js';
import type { Hosts } from './systems.js';

export const MPC_ALIAS = '198.19.255.1';
export const WAN_MPC_BASE = 31000;
/** one-way delay per party link (ms): party↔party RTT = 4 × this */
export const LINK_DELAY_MS = 5;

export interface Wan { hosts: Hosts; destroy(): Promise<void> }

/** lossPct: end-to-end loss per direction between two parties (split over their two links). */
export async function createWan(lossPct: number): Promise<Wan> {
  const perLink = lossPct / 2;
  if (!Number.isInteger(perLink)) throw new Error(`loss ${lossPct} %: the lab's nft loss takes whole percents per link; use an even number`);
  const link = { delayMs: LINK_DELAY_MS, ...(perLink > 0 ? { lossPct: perLink } : {}) };
  const spec: LabSpec = { routers: [], hosts: [{ name: 'a', attach: 'internet', link }, { name: 'b', attach: 'internet', link }, { name: 'c', attach: 'internet', link }, { name: 'r', attach: 'internet' }] };
  const lab = await Lab.create(spec);
  try {
    const ip = { a: lab.address('a'), b: lab.address('b'), c: lab.address('c'), r: lab.address('r') };
    const parties = [ip.a, ip.b, ip.c];
    const rules = [
      'table ip bench_mpc {',
      '  chain out {',
      '    type nat hook output priority -100; policy accept;',
      ...parties.map((addr, k) => `    ip daddr ${MPC_ALIAS} tcp dport ${WAN_MPC_BASE + k} dnat to ${addr}`),
      '  }',
      '}',
      '',
    ].join('\n');
    for (const h of ['a', 'b', 'c']) lab.nft(h, rules);
    return {
      hosts: { ns: { a: lab.ns('a'), b: lab.ns('b'), c: lab.ns('c'), r: lab.ns('r') }, ip, mpcHost: MPC_ALIAS, mpcBase: WAN_MPC_BASE },
      destroy: () => lab.teardown(),
    };
  } catch (err) {
    await lab.teardown();
    throw err;
  }
}
