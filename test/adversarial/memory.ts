// Reads another process's memory the way a local attacker with the same rights (or a core
// dump, or swap) would: every readable mapping of /proc/<pid>/mem, searched for byte
// strings. Needs root or ptrace rights over the process (our own child here).
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';

/** read mappings in pieces of this size (a needle across a piece boundary is still found: pieces overlap) */
const CHUNK = 8 << 20;

/** Which of `needles` (each ≤ 64 bytes) occur anywhere in the process's readable memory. */
export function findInMemory(pid: number, needles: Buffer[]): Set<number> {
  const found = new Set<number>();
  const overlap = Math.max(...needles.map((n) => n.length)) - 1;
  const fd = openSync(`/proc/${pid}/mem`, 'r');
  const buf = Buffer.alloc(CHUNK + overlap);
  try {
    for (const line of readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n')) {
      const m = /^([0-9a-f]+)-([0-9a-f]+) (r)...? /.exec(line);
      if (!m || line.includes('[vvar]') || line.includes('[vsyscall]')) continue;
      const start = parseInt(m[1]!, 16);
      const end = parseInt(m[2]!, 16);
      for (let at = start; at < end; at += CHUNK) {
        const want = Math.min(CHUNK + overlap, end - at);
        let n = 0;
        try { n = readSync(fd, buf, 0, want, at); } catch { break; /* unreadable (guard pages) */ }
        const view = buf.subarray(0, n);
        needles.forEach((needle, i) => { if (!found.has(i) && view.indexOf(needle) >= 0) found.add(i); });
      }
    }
  } finally {
    closeSync(fd);
  }
  return found;
}
