// Lab rows of issue #14's reach features (IPv6 dual stack, port mapping, birthday
// probing, every relay at once), as specs with their expected outcome. NOT a test file:
// reach.test.ts runs them — IPV6_ROWS and PORT_MAPPING_ROWS with runRow (rows.ts) and the
// mechanism check, the TrialsRow as trials in one lab, the RelayLossRow with its fault
// (reach-run.ts) — in section 'reach' of the results.
//
// Every spec here is buildable (plan.test.ts plans each one) and the topology underneath
// each is proven without the agent in topology-kinds.test.ts: IPv6 firewalls drop
// unsolicited and pass punched flows, the dual-stack host's IPv6 is not NATed, miniupnpd's
// mappings are reachable from the Internet.
import type { LabSpec } from '../../src/lab/spec.js';
import { DIRECT, RELAY_UDP, relayHost, type Row } from './rows.js';

/** How a direct path was found (issue #14: status shows it per peer). */
export type Mechanism = 'lan' | 'stun' | 'ipv6' | 'port-mapping' | 'birthday';

export interface ReachRow extends Row {
  /** the mechanism status must name for every direct pair of the row */
  mechanism?: Mechanism;
}

const dualRelay = { ...relayHost, family: 'dual' as const };

export const IPV6_ROWS: ReachRow[] = [
  {
    title: 'two IPv6-only parties behind stateful IPv6 firewalls (no NAT; inbound dropped unless solicited)',
    expected: 'direct over IPv6 (punched), within 2 s',
    spec: { routers: [{ name: 'fa', nat: 'ipv6-firewall' }, { name: 'fb', nat: 'ipv6-firewall' }], hosts: [dualRelay, { name: 'a', attach: 'fa' }, { name: 'b', attach: 'fb' }] },
    parties: ['a', 'b'],
    // the parties have no IPv4 at all: the session file gives the relay's IPv6 address
    relayFamily: 6,
    expect: () => ({ ...DIRECT, family: 6 }),
    maxTimeToDirectMs: 2000,
    mechanism: 'ipv6',
  },
  {
    title: 'dual-stack pair: symmetric IPv4 NAT on both sides, IPv6 through stateful firewalls',
    expected: 'direct over IPv6 (IPv4 alone would stay on the relay)',
    spec: {
      routers: [{ name: 'ra', nat: 'symmetric', ipv6: true }, { name: 'rb', nat: 'symmetric', ipv6: true }],
      hosts: [dualRelay, { name: 'a', attach: 'ra' }, { name: 'b', attach: 'rb' }],
    },
    parties: ['a', 'b'],
    expect: () => ({ ...DIRECT, family: 6 }),
    mechanism: 'ipv6',
  },
];

export const PORT_MAPPING_ROWS: ReachRow[] = [
  {
    title: 'symmetric NAT with UPnP-IGD / NAT-PMP / PCP (miniupnpd) ↔ EIM NAT',
    expected: 'direct via the mapping (the symmetric side\'s public address, the mapped port)',
    spec: {
      routers: [{ name: 'rm', nat: 'symmetric', portMapping: true }, { name: 'rb', nat: 'port-restricted' }],
      hosts: [relayHost, { name: 'm', attach: 'rm' }, { name: 'b', attach: 'rb' }],
    },
    parties: ['m', 'b'],
    expect: (i, _j, lab) => (i === 1 ? { ...DIRECT, host: lab.publicAddress('m') } : DIRECT),
    mechanism: 'port-mapping',
  },
];

/** A row run as fresh labs again and again: at least `atLeast` of `trials` must be as expected. */
export interface TrialsRow extends ReachRow {
  trials: number;
  atLeast: number;
}

// Two relays: each agent learns its NAT's kind by comparing the two relays' STUN answers
// (nat-type.ts); one relay does the same with its second STUN port (on by default), which
// it names in OTHER-ADDRESS; without it the kinds stay unknown and nothing is probed.
const secondRelay = { name: 'relay2', attach: 'internet' };
const eimVsSymmetric: LabSpec = {
  routers: [{ name: 'ra', nat: 'port-restricted' }, { name: 'rs', nat: 'symmetric' }],
  hosts: [relayHost, secondRelay, { name: 'a', attach: 'ra' }, { name: 's', attach: 'rs' }],
};

export const BIRTHDAY_ROWS: (ReachRow | TrialsRow)[] = [
  {
    title: 'EIM NAT ↔ symmetric NAT, no port mapping, two relays, 20 fresh trials (agents restarted, NAT state flushed)',
    expected: 'direct by bounded birthday probing in at least 18 of 20 trials; time to direct reported; no probe beyond the budget',
    spec: eimVsSymmetric,
    parties: ['a', 's'],
    relays: ['relay', 'relay2'],
    expect: () => DIRECT,
    mechanism: 'birthday',
    trials: 20,
    atLeast: 18,
  },
  {
    title: 'EIM NAT ↔ symmetric NAT, no port mapping, ONE relay with its second STUN port (mpyc-relay\'s default), 5 fresh trials',
    expected: 'direct by birthday probing in at least 4 of 5 trials (the NAT kinds come from the relay\'s two STUN endpoints)',
    spec: { ...eimVsSymmetric, hosts: eimVsSymmetric.hosts.filter((h) => h.name !== 'relay2') },
    parties: ['a', 's'],
    relays: ['relay'],
    expect: () => DIRECT,
    mechanism: 'birthday',
    trials: 5,
    atLeast: 4,
  },
  {
    title: 'symmetric NAT ↔ symmetric NAT with birthday probing available (two relays: both know they are hard)',
    expected: 'relay (never probed when both sides are hard)',
    spec: { routers: [{ name: 'rs', nat: 'symmetric' }, { name: 'rt', nat: 'symmetric' }], hosts: [relayHost, secondRelay, { name: 's', attach: 'rs' }, { name: 't', attach: 'rt' }] },
    parties: ['s', 't'],
    relays: ['relay', 'relay2'],
    expect: () => RELAY_UDP,
  },
];

/**
 * A fault during a run: `party` can no longer reach relay `relay` (everything between
 * its public address and that relay's is dropped on the Internet router:
 * blackholeRuleset), while every other party still can.
 */
export interface RelayLossRow extends ReachRow {
  fault: { party: number; relay: number };
  /** the party must be reachable through another relay within this long (issue #14: 2 s) */
  maxRehomeMs: number;
}

export const RELAY_ROWS: RelayLossRow[] = [
  {
    title: 'one party loses its relay alone (two relays; three parties behind symmetric NATs, all relayed)',
    expected: 'its relayed pairs keep working throughout an MPyC run (bytes verified); re-homed within 2 s; no pair split across relays',
    spec: {
      routers: [{ name: 'ra', nat: 'symmetric' }, { name: 'rb', nat: 'symmetric' }, { name: 'rc', nat: 'symmetric' }],
      hosts: [relayHost, { name: 'relay2', attach: 'internet' }, { name: 'a', attach: 'ra' }, { name: 'b', attach: 'rb' }, { name: 'c', attach: 'rc' }],
    },
    parties: ['a', 'b', 'c'],
    relays: ['relay', 'relay2'],
    expect: () => RELAY_UDP,
    fault: { party: 0, relay: 0 },
    maxRehomeMs: 2000,
  },
];

export const REACH_ROWS: ReachRow[] = [...IPV6_ROWS, ...PORT_MAPPING_ROWS, ...BIRTHDAY_ROWS, ...RELAY_ROWS];
