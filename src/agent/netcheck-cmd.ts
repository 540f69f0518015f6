// `mpyc-agent netcheck [SESSION | --relay ADDR ...] [--json]`: the command line. What it
// checks is in netcheck.ts (loaded only when it runs: it needs ws), the report's shape and
// text in netcheck-report.ts.
import { EXIT, EXIT_CODES_HELP, UsageError, expectPositionals, parseCommandLine } from '../common/cli.js';
import { MAX_RELAYS } from './inner.js';
import { loadSessionFile, parseRelayAddress } from './session-file.js';
import { formatNetcheck, reachable } from './netcheck-report.js';
import { roundStatus } from './status-format.js';
import { USAGE } from './usage.js';
import type { RelayAddress } from './types.js';

export const NETCHECK_HELP = `${USAGE.netcheck}

Checks, from this host and without a running agent, what the agent will meet here:
  - UDP: a STUN request to every relay address, IPv4 and IPv6 (where the relay has one),
    from one socket per family, as the agent sends; the round trip to each relay;
  - the reflexive address (this host as the relays see it) per family, and whether it is
    behind a NAT;
  - the NAT's mapping behaviour: endpoint-independent (the same reflexive address towards
    every destination: hole punching works) or endpoint-dependent (a symmetric NAT). It
    compares what two STUN endpoints saw: two relays, or one relay and the second endpoint
    it names in its answer (RFC 5780 OTHER-ADDRESS); with a single endpoint it is unknown;
  - the WebSocket fallback over TCP to each relay with an /httpPort, through the proxy the
    agent would take (HTTP_PROXY for ws://, HTTPS_PROXY for wss:// relays, else ALL_PROXY;
    NO_PROXY honoured) when one is set, and then also without it.
  SESSION          the session file: its relays are checked
  --relay ADDR     a relay address (KEY@host:udpPort/httpPort); repeatable; instead of SESSION
  --json           the report as one JSON object (round trips rttMs to 0.01 ms)
Exit 0 when some relay answered (UDP or WebSocket), 1 when none did.

${EXIT_CODES_HELP}`;

const OPTIONS = { relay: { kind: 'list', value: 'ADDR' }, json: { kind: 'boolean' } } as const;

function relaysFrom(session: string | undefined, flags: string[] | undefined): RelayAddress[] {
  if (session !== undefined && flags !== undefined) throw new UsageError('give SESSION or --relay ADDR, not both');
  if (session !== undefined) return loadSessionFile(session, { minParties: 0 }).relays;
  if (flags === undefined) throw new UsageError('missing SESSION or --relay ADDR (the relays to check)');
  if (flags.length > MAX_RELAYS) throw new UsageError(`at most ${MAX_RELAYS} relays, got ${flags.length}`);
  return flags.map((text) => {
    const r = parseRelayAddress(text);
    if (!r.ok) throw new UsageError(`--relay ${JSON.stringify(text)}: ${r.error}`);
    return r.value;
  });
}

export async function runNetcheck(argv: string[]): Promise<number> {
  const { help, values, positionals } = parseCommandLine(argv, OPTIONS);
  if (help) { process.stdout.write(NETCHECK_HELP); return EXIT.OK; }
  expectPositionals(positionals, 0, 1, 'one SESSION file');
  const relays = relaysFrom(positionals[0], values.relay);
  const { netcheck } = await import('./netcheck.js');
  const report = await netcheck(relays);
  process.stdout.write(values.json ? JSON.stringify(roundStatus(report), null, 2) + '\n' : formatNetcheck(report));
  return reachable(report) ? EXIT.OK : EXIT.FAILURE;
}
