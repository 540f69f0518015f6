// `mpyc-agent status`: asks the running agent over its control socket and prints its view
// of every peer, once or (--watch) every interval until Ctrl-C or until the agent goes away.
import { setTimeout as delay } from 'node:timers/promises';
import { ControlError, defaultControlDir, findControlSocket, queryStatus } from './control.js';
import { formatStatus, roundStatus } from './status-format.js';
import { EXIT, EXIT_CODES_HELP, UsageError, expectPositionals, formatLocalTime, parseCommandLine, secondsIn } from '../common/cli.js';
import type { AgentStatus } from './types.js';
import { USAGE } from './usage.js';

const DEFAULT_INTERVAL_S = 1;
/** bounds of --interval: faster than 0.1 s is no longer readable; slower than an hour is not watching */
const MIN_INTERVAL_S = 0.1;
const MAX_INTERVAL_S = 3600;
const QUERY_TIMEOUT_MS = 3000;

export const STATUS_HELP = `${USAGE.status}

Shows the running agent's view: every relay with its registration state (and why not),
the reflexive addresses per family and the UDP ports, this host's NAT mapping per family
(endpoint-independent, endpoint-dependent or unknown) and the router's port mapping
(protocol, public address, lease); per peer its state, liveness (waiting, connected,
offline, and since when), path (direct address with its family and how the address was
learned, or the relay and transport), which mechanism found a direct path (LAN, STUN,
IPv6, port mapping, birthday probing), RTT, bytes each way, handshake age, streams, last
error; then, for the peers that report their NAT or were probed, the peer's NAT mapping
and the birthday probing towards it (attempts, probes sent, paths found).
  --json               the status object instead of the table; RTTs (rttMs) rounded to
                       0.01 ms, other fractional milliseconds to 0.1 ms
  --watch              refresh every interval (on a terminal the screen is redrawn; with
                       --json one object per line) until Ctrl-C (exit 0) or until the
                       agent goes away (exit 1)
  --interval SECONDS   refresh interval for --watch, ${MIN_INTERVAL_S}..${MAX_INTERVAL_S} (default ${DEFAULT_INTERVAL_S})
  --control PATH       the agent's control socket
  --key FILE           the agent's key file (the socket name derives from its public key)
Without --control or --key: the only agent socket in ${defaultControlDir()}.

${EXIT_CODES_HELP}`;

const OPTIONS = {
  json: { kind: 'boolean' }, watch: { kind: 'boolean' }, interval: { kind: 'string', value: 'SECONDS' },
  control: { kind: 'string', value: 'PATH' }, key: { kind: 'string', value: 'FILE' },
} as const;

export async function runStatus(argv: string[]): Promise<number> {
  const { help, values, positionals } = parseCommandLine(argv, OPTIONS);
  if (help) { process.stdout.write(STATUS_HELP); return EXIT.OK; }
  expectPositionals(positionals, 0, 0, 'nothing');
  if (values.control !== undefined && values.key !== undefined) throw new UsageError('give --control PATH or --key FILE, not both');
  if (values.interval !== undefined && !values.watch) throw new UsageError('--interval goes with --watch');
  const intervalMs = values.interval === undefined ? DEFAULT_INTERVAL_S * 1000 : secondsIn(values.interval, '--interval', MIN_INTERVAL_S, MAX_INTERVAL_S);
  const path = findControlSocket(values.control, values.key);
  const render = (st: AgentStatus): string => (values.json ? JSON.stringify(roundStatus(st), null, values.watch ? undefined : 2) + '\n' : formatStatus(st));
  if (!values.watch) {
    process.stdout.write(render(await queryStatus(path, QUERY_TIMEOUT_MS)));
    return EXIT.OK;
  }
  return watch(path, intervalMs, render, values.json === true);
}

const CLEAR_SCREEN = '\x1b[H\x1b[2J';

/** Redraws until Ctrl-C/SIGTERM (0) or the agent goes away (ControlError, exit 1); a slow answer is reported and waited out. */
async function watch(path: string, intervalMs: number, render: (st: AgentStatus) => string, json: boolean): Promise<number> {
  const out = process.stdout;
  const stopper = new AbortController();
  const stop = (): void => stopper.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  out.once('error', stop); // stdout closed (`| head`): stop quietly
  const redraw = out.isTTY === true && !json;
  try {
    while (!stopper.signal.aborted) {
      let st: AgentStatus | undefined;
      try {
        st = await queryStatus(path, QUERY_TIMEOUT_MS, stopper.signal);
      } catch (e) {
        if (stopper.signal.aborted) break;
        if (!(e instanceof ControlError) || e.reason !== 'timeout') throw new ControlError(`the agent went away (${(e as Error).message})`, 'unreachable');
        process.stderr.write(`mpyc-agent status: no answer within ${QUERY_TIMEOUT_MS} ms; still watching\n`);
      }
      if (st) {
        const header = `mpyc-agent status  every ${intervalMs / 1000}s  ${formatLocalTime(Date.now())}  (Ctrl-C to quit)\n`;
        if (json) out.write(render(st));
        else out.write(redraw ? CLEAR_SCREEN + header + render(st) : header + render(st) + '\n');
      }
      await delay(intervalMs, undefined, { signal: stopper.signal }).catch(() => undefined);
    }
    return EXIT.OK;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    out.off('error', stop);
  }
}
