// `mpyc-agent ping PARTY`: an authenticated echo to a peer through the running agent (its
// control socket), like `tailscale ping`: per sample the RTT and the path it took (a direct
// address and how it was found, or which relay and transport), then a summary. One control
// request per sample, so each line appears as its answer arrives.
import { setTimeout as delay } from 'node:timers/promises';
import { ControlError, defaultControlDir, findControlSocket, queryStatus, requestPing } from './control.js';
import { formatMechanism, formatPath, formatRtt, roundStatus } from './status-format.js';
import { EXIT, EXIT_CODES_HELP, UsageError, expectPositionals, parseCommandLine, printable, secondsIn } from '../common/cli.js';
import type { AgentStatus, PathInfo, PeerStatus, PingResult } from './types.js';
import { USAGE } from './usage.js';

const DEFAULT_COUNT = 4;
/** as the agent's own bound on samples per ping call */
const MAX_COUNT = 1000;
const DEFAULT_INTERVAL_S = 1;
/** the agent's shortest interval is 10 ms; past 10 s between samples is not an echo test */
const MIN_INTERVAL_S = 0.01;
const MAX_INTERVAL_S = 10;
const STATUS_TIMEOUT_MS = 3000;

export const PING_HELP = `${USAGE.ping}

Sends authenticated echo requests to another party's agent through this party's running
agent, on the path its traffic takes now, and prints each answer's round-trip time and
path: a direct address, how that address was learned (interface, STUN, port mapping,
observed) and which mechanism found the path (LAN, STUN, IPv6, port mapping, birthday
probing), or the relay and its transport (udp, ws). Then a summary. Exit 0 when at least one answer
came, 1 when none did (or the agent is not reachable), 2 for bad usage.
  PARTY                the party's index in the session file, or its name
  --count N            samples, 1..${MAX_COUNT} (default ${DEFAULT_COUNT})
  --interval SECONDS   between samples, ${MIN_INTERVAL_S}..${MAX_INTERVAL_S} (default ${DEFAULT_INTERVAL_S}); an answer counts as
                       lost after 2 s
  --json               one JSON object at the end: every sample (rttMs absent when lost,
                       rounded to 0.01 ms) and the summary
  --control PATH       the agent's control socket
  --key FILE           the agent's key file (the socket name derives from its public key)
Without --control or --key: the only agent socket in ${defaultControlDir()}.

${EXIT_CODES_HELP}`;

const OPTIONS = {
  count: { kind: 'string', value: 'N', short: 'c' }, interval: { kind: 'string', value: 'SECONDS', short: 'i' }, json: { kind: 'boolean' },
  control: { kind: 'string', value: 'PATH' }, key: { kind: 'string', value: 'FILE' },
} as const;

type Sample = PingResult['samples'][number];

export interface PingSummary {
  sent: number;
  answered: number;
  /** percent, to 0.1 */
  lossPct: number;
  /** over the answered samples; absent when none was */
  rttMinMs?: number;
  rttAvgMs?: number;
  rttMaxMs?: number;
}

export function summarize(samples: readonly Sample[]): PingSummary {
  const rtts = samples.flatMap((s) => (s.rttMs === undefined ? [] : [s.rttMs]));
  const sent = samples.length;
  const summary: PingSummary = { sent, answered: rtts.length, lossPct: sent === 0 ? 0 : Math.round((1000 * (sent - rtts.length)) / sent) / 10 };
  if (rtts.length === 0) return summary;
  return { ...summary, rttMinMs: Math.min(...rtts), rttAvgMs: rtts.reduce((a, b) => a + b, 0) / rtts.length, rttMaxMs: Math.max(...rtts) };
}

/** The party PARTY names among the agent's peers: an index, else a name. */
export function findPeer(st: AgentStatus, party: string): PeerStatus {
  const peer = /^\d{1,4}$/.test(party) ? st.peers.find((p) => p.index === Number(party)) : st.peers.find((p) => p.name === party);
  if (peer) return peer;
  if (/^\d{1,4}$/.test(party) && Number(party) === st.ownIndex) throw new UsageError(`party ${party} is this agent itself`);
  const known = st.peers.map((p) => `${p.index}${p.name ? ` (${printable(p.name)})` : ''}`).join(', ');
  throw new UsageError(`no party ${JSON.stringify(party)} among this agent's peers (${known || 'none'})`);
}

/**
 * The agent's ping names the route a sample took but neither how a direct address was found
 * nor which mechanism found the path (it reports every direct address as observed: agent.ts
 * ping builds the path without them). Its status has both for the path in use: take them
 * when the sample went the same way, else say neither.
 */
export function withStatusDetails(path: PathInfo | null, now: PeerStatus | undefined): PathInfo | null {
  if (path?.kind !== 'direct') return path;
  const current = now?.path;
  const same = current?.kind === 'direct' && current.address === path.address ? current : undefined;
  return {
    kind: 'direct', address: path.address, lan: path.lan, ...(path.family ? { family: path.family } : {}),
    ...(same?.source ? { source: same.source } : {}), ...(same?.mechanism ? { mechanism: same.mechanism } : {}),
  };
}

/** `, found by STUN` for a direct path whose mechanism the status named, else '' */
function foundBy(p: PathInfo): string {
  const mechanism = formatMechanism(p);
  return mechanism === '-' ? '' : `, found by ${mechanism}`;
}

function peerName(p: PeerStatus): string {
  return `party ${p.index}${p.name ? ` (${printable(p.name)})` : ''}`;
}

export function sampleLine(peer: PeerStatus, s: Sample): string {
  if (!s.path) return `no path to ${peerName(peer)} yet (no session: is its agent running?)`;
  if (s.rttMs === undefined) return `no answer from ${peerName(peer)} within 2 s (sent via ${formatPath(s.path)}${foundBy(s.path)})`;
  return `pong from ${peerName(peer)} via ${formatPath(s.path)} in ${formatRtt(s.rttMs)}${foundBy(s.path)}`;
}

export function summaryLines(peer: PeerStatus, samples: readonly Sample[]): string {
  const s = summarize(samples);
  const lines = [`--- ${peerName(peer)}: ${s.sent} sent, ${s.answered} answered, ${s.lossPct}% lost`
    + (s.answered > 0 ? `; rtt min/avg/max ${formatRtt(s.rttMinMs)} / ${formatRtt(s.rttAvgMs)} / ${formatRtt(s.rttMaxMs)}` : '')];
  const last = [...samples].reverse().find((x) => x.rttMs !== undefined);
  if (last?.path) lines.push(`last answer via ${formatPath(last.path)}${foundBy(last.path)}${last.path.kind === 'relay' ? ' (no direct path in use)' : ''}`);
  return lines.join('\n') + '\n';
}

export async function runPing(argv: string[]): Promise<number> {
  const { help, values, positionals } = parseCommandLine(argv, OPTIONS);
  if (help) { process.stdout.write(PING_HELP); return EXIT.OK; }
  expectPositionals(positionals, 1, 1, 'one PARTY (an index or a name)');
  if (values.control !== undefined && values.key !== undefined) throw new UsageError('give --control PATH or --key FILE, not both');
  const count = values.count === undefined ? DEFAULT_COUNT : /^\d{1,4}$/.test(values.count) ? Number(values.count) : NaN;
  if (!(count >= 1 && count <= MAX_COUNT)) throw new UsageError(`--count must be an integer in 1..${MAX_COUNT}, got ${JSON.stringify(values.count)}`);
  const intervalMs = values.interval === undefined ? DEFAULT_INTERVAL_S * 1000 : secondsIn(values.interval, '--interval', MIN_INTERVAL_S, MAX_INTERVAL_S);
  const path = findControlSocket(values.control, values.key);
  const peer = findPeer(await queryStatus(path, STATUS_TIMEOUT_MS), positionals[0]!);

  const stopper = new AbortController();
  const stop = (): void => stopper.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const samples: Sample[] = [];
  try {
    const t0 = performance.now();
    for (let seq = 0; seq < count && !stopper.signal.aborted; seq++) {
      const wait = t0 + seq * intervalMs - performance.now();
      if (wait > 0) await delay(wait, undefined, { signal: stopper.signal }).catch(() => undefined);
      if (stopper.signal.aborted) break;
      let r: PingResult;
      try {
        r = await requestPing(path, peer.index, { count: 1, intervalMs }, stopper.signal);
      } catch (e) {
        if (stopper.signal.aborted) break;
        throw e;
      }
      const taken = r.samples[0];
      if (!taken) throw new ControlError('the agent is stopping', 'unreachable');
      const now = await queryStatus(path, STATUS_TIMEOUT_MS).then((st) => st.peers.find((p) => p.index === peer.index), () => undefined);
      const sample = { ...taken, seq, path: withStatusDetails(taken.path, now) };
      samples.push(sample);
      if (!values.json) process.stdout.write(sampleLine(peer, sample) + '\n');
    }
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
  if (values.json) {
    process.stdout.write(JSON.stringify(roundStatus({ party: peer.index, name: peer.name, samples, ...summarize(samples) })) + '\n');
  } else {
    process.stdout.write(summaryLines(peer, samples));
  }
  return samples.some((s) => s.rttMs !== undefined) ? EXIT.OK : EXIT.FAILURE;
}
