// The control socket's request format (one JSON object per line, control.ts carries it):
//
//   {"method": "status"}                                                   → AgentStatus
//   {"method": "metrics"}                                                  → Prometheus text
//   {"method": "ping", "params": {"party": N, "count"?: C, "intervalMs"?: I}} → PingResult
//
// plus an optional "id" (any JSON value) that the answer echoes. parseControlRequest checks
// everything a caller controls and never throws: a malformed request is an error answer,
// never a crash and never an unbounded amount of work.
import { MAX_PARTIES } from './session-file.js';

/** ping samples per request: a local caller wanting more sends more requests (`mpyc-agent ping` sends one per sample) */
export const MAX_CONTROL_PING_COUNT = 100;
/** between samples: at least the core's minimum, at most 10 s, so one request ends within 100 × 10 s + 2 s */
export const MIN_CONTROL_PING_INTERVAL_MS = 10;
export const MAX_CONTROL_PING_INTERVAL_MS = 10_000;
export const DEFAULT_CONTROL_PING_INTERVAL_MS = 1_000;

export type ControlRequest =
  | { method: 'status' }
  | { method: 'metrics' }
  | { method: 'ping'; party: number; count: number; intervalMs: number };

export type ControlMethod = ControlRequest['method'];
export const CONTROL_METHODS: readonly ControlMethod[] = ['status', 'metrics', 'ping'];

export type ParsedControlRequest =
  | { ok: true; id: unknown; request: ControlRequest }
  | { ok: false; id: unknown; error: string };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function intIn(v: unknown, min: number, max: number): number | undefined {
  return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max ? v : undefined;
}

function parsePing(params: unknown): ControlRequest | string {
  if (!isObject(params)) return 'ping needs "params": {"party": N, "count"?: C, "intervalMs"?: MS}';
  const party = intIn(params.party, 0, MAX_PARTIES - 1);
  if (party === undefined) return `ping: "party" must be an integer in 0..${MAX_PARTIES - 1}`;
  const count = params.count === undefined ? 1 : intIn(params.count, 1, MAX_CONTROL_PING_COUNT);
  if (count === undefined) return `ping: "count" must be an integer in 1..${MAX_CONTROL_PING_COUNT}`;
  const intervalMs = params.intervalMs === undefined ? DEFAULT_CONTROL_PING_INTERVAL_MS : intIn(params.intervalMs, MIN_CONTROL_PING_INTERVAL_MS, MAX_CONTROL_PING_INTERVAL_MS);
  if (intervalMs === undefined) return `ping: "intervalMs" must be an integer in ${MIN_CONTROL_PING_INTERVAL_MS}..${MAX_CONTROL_PING_INTERVAL_MS}`;
  return { method: 'ping', party, count, intervalMs };
}

/** One request line (without its newline); never throws. */
export function parseControlRequest(line: string): ParsedControlRequest {
  let req: unknown;
  try { req = JSON.parse(line); } catch { return { ok: false, id: undefined, error: 'request is not JSON (send {"method":"status"} and a newline)' }; }
  if (!isObject(req)) return { ok: false, id: undefined, error: 'request must be a JSON object' };
  const { id, method } = req;
  if (method === 'status' || method === 'metrics') return { ok: true, id, request: { method } };
  if (method === 'ping') {
    const ping = parsePing(req.params);
    return typeof ping === 'string' ? { ok: false, id, error: ping } : { ok: true, id, request: ping };
  }
  // the method echoed is the caller's own text, bounded by the line limit; shortened all the same
  const shown = JSON.stringify(method) ?? String(method);
  return { ok: false, id, error: `unknown method ${shown.length > 40 ? `${shown.slice(0, 40)}…` : shown} (known: ${CONTROL_METHODS.join(', ')})` };
}
