// Issue #14's further NAT kinds with the real agent, rows that today's agent should
// already pass: UDP mappings that expire after 30 s idle, address- vs port-restricted
// filtering, and two parties behind one NAT without a LAN path (hairpinning or not).
// Same runner as the matrix (rows.ts); results in docs/lab-results.md.
import { expect } from 'vitest';
import type { Lab } from '../../src/lab/lab.js';
import type { MpycLab } from '../../src/lab/mpyc-lab.js';
import { DIRECT, RELAY_UDP, relayHost, rowTests, type Row } from './rows.js';

/** the idle timeout of issue #14's row, and the idle period it must survive */
const IDLE_TIMEOUT_SEC = 30;
const IDLE_PERIOD_MS = 35_000;

/**
 * The conntrack entries of the pair's direct flow on each router, with their remaining
 * lifetime, read after the idle period: proof that the short timeout policy is what the
 * agents' packets live under (under the kernel's defaults a flow that old and busy is an
 * assured stream with 120 s).
 */
function directFlowTimers(lab: Lab, ml: MpycLab, routers: string[]): string {
  const relayAddress = lab.address('relay');
  const timers = routers.map((r, i) => {
    const peerPublic = lab.publicAddress(ml.parties[1 - i]!.node);
    // "udp 17 29 src=10.1.0.10 dst=198.18.2.2 sport=… dport=… src=…": protocol, number, seconds left
    const line = lab.conntrackList(r).split('\n').find((l) => l.startsWith('udp') && l.includes(` dst=${peerPublic} `) && !l.includes(relayAddress));
    expect(line, `${r}: a conntrack entry of the direct flow towards ${peerPublic}`).toBeDefined();
    const left = Number(line!.split(/\s+/)[2]);
    expect(left, `${r}: remaining lifetime of the direct flow's entry (${line})`).toBeLessThanOrEqual(IDLE_TIMEOUT_SEC);
    return `${r} ${left} s`;
  });
  return `conntrack timer of the direct flow: ${timers.join(', ')} (policy ${IDLE_TIMEOUT_SEC} s)`;
}

const ROWS: Row[] = [
  {
    title: `EIM NAT ↔ EIM NAT, both with UDP mappings expiring after ${IDLE_TIMEOUT_SEC} s idle; ${IDLE_PERIOD_MS / 1000} s without MPyC traffic between two runs`,
    expected: 'direct; heartbeats keep it through the idle period (no path change)',
    spec: { routers: [{ name: 'ra', nat: 'port-restricted', udpIdleTimeoutSec: IDLE_TIMEOUT_SEC }, { name: 'rb', nat: 'port-restricted', udpIdleTimeoutSec: IDLE_TIMEOUT_SEC }],
      hosts: [relayHost, { name: 'a', attach: 'ra' }, { name: 'b', attach: 'rb' }] },
    parties: ['a', 'b'], expect: () => DIRECT,
    idleMs: IDLE_PERIOD_MS,
    evidence: (lab, ml) => directFlowTimers(lab, ml, ['ra', 'rb']),
  },
  {
    title: 'address-restricted NAT ↔ symmetric NAT (counterpart of the matrix\'s port-restricted "EIM NAT ↔ symmetric NAT" without a second STUN port: relay)',
    expected: 'direct: the symmetric side\'s new mapping is let in by address and found as peer-reflexive',
    spec: { routers: [{ name: 'ra', nat: 'address-restricted' }, { name: 'rs', nat: 'symmetric' }], hosts: [relayHost, { name: 'a', attach: 'ra' }, { name: 's', attach: 'rs' }] },
    parties: ['a', 's'], expect: () => DIRECT,
  },
  {
    title: 'two parties behind one hairpinning EIM NAT, LAN ports isolated (no LAN path)',
    expected: 'direct through the hairpin (the NAT\'s public address)',
    spec: { routers: [{ name: 'rh', nat: 'port-restricted', hairpin: true, isolateLan: true }], hosts: [relayHost, { name: 'a', attach: 'rh' }, { name: 'b', attach: 'rh' }] },
    parties: ['a', 'b'], expect: (_i, _j, lab) => ({ ...DIRECT, host: lab.publicAddress('rh') }),
  },
  {
    title: 'two parties behind one EIM NAT without hairpinning, LAN ports isolated (no LAN path)',
    expected: 'relay (neither the LAN nor the public address reaches the other)',
    spec: { routers: [{ name: 'rn', nat: 'port-restricted', isolateLan: true }], hosts: [relayHost, { name: 'a', attach: 'rn' }, { name: 'b', attach: 'rn' }] },
    parties: ['a', 'b'], expect: () => RELAY_UDP,
  },
];

rowTests({ title: 'further NAT kinds (issue #14)', section: 'kinds', file: 'kinds', rows: ROWS, timeoutMs: (row) => (row.idleMs !== undefined ? 150_000 : 90_000) });
