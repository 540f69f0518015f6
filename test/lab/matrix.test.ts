// The NAT matrix of DESIGN.md §4 on real kernel NATs: per row, a relay on the
// "Internet", two or three agents (`mpyc-agent up`) behind the row's routers, MPyC-like
// parties checking every byte, and every pair's final path read from
// `mpyc-agent status --json` (rows.ts). Records time to first byte and time to direct.
import { DIRECT, RELAY_UDP, relayHost, rowTests, type Row } from './rows.js';

const ROWS: Row[] = [
  {
    title: 'no NAT ↔ EIM NAT', expected: 'direct',
    spec: { routers: [{ name: 'rb', nat: 'port-restricted' }], hosts: [relayHost, { name: 'a', attach: 'internet' }, { name: 'b', attach: 'rb' }] },
    parties: ['a', 'b'], expect: () => DIRECT,
  },
  {
    title: 'EIM NAT ↔ EIM NAT (3 parties, 3 home routers)', expected: 'direct, within 2 s',
    spec: { routers: [{ name: 'ra', nat: 'port-restricted' }, { name: 'rb', nat: 'port-restricted' }, { name: 'rc', nat: 'port-restricted' }],
      hosts: [relayHost, { name: 'a', attach: 'ra' }, { name: 'b', attach: 'rb' }, { name: 'c', attach: 'rc' }] },
    parties: ['a', 'b', 'c'], expect: () => DIRECT,
    // DESIGN.md §5: "direct path established within 2 s in the lab's EIM↔EIM case"
    maxTimeToDirectMs: 2000,
  },
  {
    title: 'same LAN behind one NAT (+ a third party behind another EIM NAT)', expected: 'direct (LAN address) on the LAN pair, direct to the third',
    spec: { routers: [{ name: 'ra', nat: 'port-restricted' }, { name: 'rc', nat: 'port-restricted' }],
      hosts: [relayHost, { name: 'a', attach: 'ra' }, { name: 'b', attach: 'ra' }, { name: 'c', attach: 'rc' }] },
    parties: ['a', 'b', 'c'], expect: (i, j) => (i < 2 && j < 2 ? { kind: 'direct', lan: true } : DIRECT),
  },
  {
    title: 'EIM NAT ↔ EIM NAT over a slow lossy Internet (10 ms ±2 ms and 1 % loss on each WAN and on the relay)', expected: 'direct',
    spec: { routers: [{ name: 'ra', nat: 'port-restricted', wan: { delayMs: 10, jitterMs: 2, lossPct: 1 } }, { name: 'rb', nat: 'port-restricted', wan: { delayMs: 10, jitterMs: 2, lossPct: 1 } }],
      hosts: [{ ...relayHost, link: { delayMs: 10, jitterMs: 2, lossPct: 1 } }, { name: 'a', attach: 'ra' }, { name: 'b', attach: 'rb' }] },
    parties: ['a', 'b'], expect: () => DIRECT,
  },
  {
    // the relay without its second STUN port (on by default): neither side can tell its NAT's
    // kind, so no birthday probing — DESIGN.md §4's row; with the port, reach.test.ts's trials
    title: 'EIM NAT ↔ symmetric NAT (a relay without a second STUN port)', expected: 'relay',
    spec: { routers: [{ name: 'ra', nat: 'port-restricted' }, { name: 'rs', nat: 'symmetric' }], hosts: [relayHost, { name: 'a', attach: 'ra' }, { name: 's', attach: 'rs' }] },
    parties: ['a', 's'], expect: () => RELAY_UDP, relayArgs: ['--stun-alt-port', '0'],
  },
  {
    title: 'symmetric NAT ↔ symmetric NAT', expected: 'relay',
    spec: { routers: [{ name: 'rs', nat: 'symmetric' }, { name: 'rt', nat: 'symmetric' }], hosts: [relayHost, { name: 's', attach: 'rs' }, { name: 't', attach: 'rt' }] },
    parties: ['s', 't'], expect: () => RELAY_UDP,
  },
  {
    title: 'UDP blocked (TCP only) ↔ EIM NAT ×2', expected: 'relay over WebSocket for the blocked party; direct between the others',
    spec: { routers: [{ name: 'ru', nat: 'udp-blocked' }, { name: 'ra', nat: 'port-restricted' }, { name: 'rb', nat: 'port-restricted' }],
      hosts: [relayHost, { name: 'u', attach: 'ru' }, { name: 'a', attach: 'ra' }, { name: 'b', attach: 'rb' }] },
    parties: ['u', 'a', 'b'],
    expect: (i, j) => (i === 0 ? { kind: 'relay', transport: 'ws' } : j === 0 ? RELAY_UDP : DIRECT),
  },
  {
    title: 'EIM behind CGNAT (double NAT) ↔ EIM NAT', expected: 'direct',
    spec: { routers: [{ name: 'cg', nat: 'port-restricted' }, { name: 'rc', nat: 'port-restricted', upstream: 'cg' }, { name: 'rb', nat: 'port-restricted' }],
      hosts: [relayHost, { name: 'c', attach: 'rc' }, { name: 'b', attach: 'rb' }] },
    parties: ['c', 'b'], expect: () => DIRECT,
  },
];

rowTests({ title: 'NAT matrix (DESIGN.md §4)', section: 'matrix', file: 'matrix', rows: ROWS });
