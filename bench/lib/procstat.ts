// Kernel counters the bench reads around a workload phase: CPU time of the proxy
// processes (the "cost" columns) and UDP receive-buffer drops (RcvbufErrors).
import { readFileSync, readlinkSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

/** clock ticks per second of /proc/<pid>/stat's utime and stime */
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** user + system CPU seconds of one process (all its threads); NaN when it is gone */
export function cpuSecondsOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the command name (field 2) may contain spaces: count fields after its closing paren
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK; // fields 14 and 15: utime, stime
  } catch { return NaN; }
}

/** summed CPU seconds of the processes (NaN if any of them is gone) */
export function cpuSeconds(pids: number[]): number {
  return pids.reduce((a, p) => a + cpuSecondsOf(p), 0);
}

/** the Udp RcvbufErrors counter of the network namespace process `pid` is in */
export function rcvbufErrorsOf(pid: number): number {
  try {
    const lines = readFileSync(`/proc/${pid}/net/snmp`, 'utf8').split('\n').filter((l) => l.startsWith('Udp:'));
    const names = lines[0]!.split(/\s+/), values = lines[1]!.split(/\s+/);
    const i = names.indexOf('RcvbufErrors');
    return i > 0 ? Number(values[i]) : NaN;
  } catch { return NaN; }
}

/** RcvbufErrors summed over the distinct network namespaces of `pids` */
export function rcvbufErrors(pids: number[]): number {
  const byNs = new Map<string, number>();
  for (const p of pids) {
    let ns: string;
    try { ns = readlinkSync(`/proc/${p}/ns/net`); } catch { return NaN; }
    if (!byNs.has(ns)) byNs.set(ns, rcvbufErrorsOf(p));
  }
  return [...byNs.values()].reduce((a, b) => a + b, 0);
}

/** Counter snapshot before a phase; the returned function gives the delta after it. */
export function counterDelta(read: () => number): () => number {
  const before = read();
  return () => read() - before;
}
