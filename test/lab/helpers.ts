// Shared helpers for the lab tests: capability gate, paths of the built CLIs, polling.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { labCapability, portMappingCapability, type Lab } from '../../src/lab/lab.js';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DIST = join(ROOT, 'dist');
export const NODE = process.execPath;
export const PROBE = join(DIST, 'src', 'lab', 'udp-probe.js');

/** Why the lab tests cannot run here, or undefined if they can. Said loudly, once per file.
 * `portMapping`: the file builds miniupnpd routers. */
export function labSkipReason(needs: string[] = [PROBE], o: { portMapping?: boolean } = {}): string | undefined {
  const cap = labCapability();
  let reason = cap.ok ? undefined : cap.reason;
  if (!reason && o.portMapping) reason = portMappingCapability().reason;
  if (!reason) for (const f of needs) if (!existsSync(f)) { reason = `${f} missing (run npm run build first)`; break; }
  if (reason) console.warn(`\n*** NAT LAB TESTS SKIPPED: ${reason} ***\n*** (they run as root on Linux with iproute2, nftables, ethtool, conntrack, cc and miniupnpd-nftables; CI has them) ***\n`);
  return reason;
}

/** In CI as root (or with LAB_REQUIRED=1) a lab that cannot run is a failure, not a skip. */
export function labRequired(): boolean {
  if (process.env.LAB_REQUIRED === '1') return true;
  return process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false' && typeof process.getuid === 'function' && process.getuid() === 0;
}

export function sleep(ms: number): Promise<void> { return new Promise((r) => setTimeout(r, ms)); }

export async function waitUntil<T>(fn: () => Promise<T | undefined> | T | undefined, ms: number, what: string, everyMs = 200): Promise<T> {
  const t0 = Date.now();
  let last: unknown;
  for (;;) {
    try { const v = await fn(); if (v !== undefined && v !== false) return v; } catch (err) { last = err; }
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`);
    await sleep(everyMs);
  }
}

export type Json = Record<string, unknown>;

/** Run udp-probe in a lab node to its end; its last stdout line parsed (empty if not JSON:
 * the assertion then shows it). */
export async function probeIn(lab: Lab, node: string, args: string[], timeoutMs = 20_000): Promise<{ code: number | null; json: Json; stderr: string }> {
  const r = await lab.execAsync(node, [NODE, PROBE, ...args], { timeoutMs });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  let json: Json = {};
  try { json = JSON.parse(last) as Json; } catch { /* leave empty */ }
  return { code: r.code, json, stderr: r.stderr };
}
