// Summary of V8 .cpuprofile files (node --cpu-prof): self time per function and per
// source file, summed over every profile in a directory, so "where the time goes" in the
// agent processes can be named by file and function.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

interface CpuNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }
interface CpuProfile { nodes: CpuNode[]; samples?: number[]; timeDeltas?: number[]; startTime: number; endTime: number }

export interface FrameTime { frame: string; file: string; ms: number; pct: number }

function shortUrl(url: string): string {
  if (!url) return '(native)';
  const path = url.replace(/^file:\/\//, '');
  const i = path.indexOf('/dist/');
  if (i >= 0) return path.slice(i + 6);
  const nm = path.indexOf('node_modules/');
  if (nm >= 0) return path.slice(nm);
  return path.startsWith('node:') ? path : relative(process.cwd(), path);
}

/** Self time (ms) per frame and per file over all profiles in dir, largest first. */
export function profileSelfTimes(dir: string): { frames: FrameTime[]; files: FrameTime[]; totalMs: number; idleMs: number } {
  const byFrame = new Map<string, { file: string; us: number }>();
  const byFile = new Map<string, number>();
  let total = 0, idle = 0;
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.cpuprofile'))) {
    let p: CpuProfile;
    try { p = JSON.parse(readFileSync(join(dir, f), 'utf8')) as CpuProfile; } catch { continue; }
    const nodes = new Map(p.nodes.map((n) => [n.id, n]));
    const samples = p.samples ?? [], deltas = p.timeDeltas ?? [];
    for (let i = 0; i < samples.length; i++) {
      const n = nodes.get(samples[i]!);
      const dt = Math.max(0, deltas[i + 1] ?? 0); // delta i+1 is the time spent in sample i
      if (!n) continue;
      const name = n.callFrame.functionName || '(anonymous)';
      total += dt;
      if (name === '(idle)') { idle += dt; continue; }
      const file = shortUrl(n.callFrame.url);
      const key = `${name} ${file}:${n.callFrame.lineNumber + 1}`;
      const e = byFrame.get(key) ?? { file, us: 0 };
      e.us += dt;
      byFrame.set(key, e);
      byFile.set(file, (byFile.get(file) ?? 0) + dt);
    }
  }
  const busy = total - idle || 1;
  const frames = [...byFrame].map(([frame, e]) => ({ frame, file: e.file, ms: e.us / 1000, pct: (100 * e.us) / busy })).sort((a, b) => b.ms - a.ms);
  const files = [...byFile].map(([file, us]) => ({ frame: file, file, ms: us / 1000, pct: (100 * us) / busy })).sort((a, b) => b.ms - a.ms);
  return { frames, files, totalMs: total / 1000, idleMs: idle / 1000 };
}

export function summarizeProfiles(dir: string, top: number): string {
  const s = profileSelfTimes(dir);
  const lines = [`  busy ${(s.totalMs - s.idleMs).toFixed(0)} ms of ${s.totalMs.toFixed(0)} ms sampled (all agent processes)`, '  by function (self time, % of busy):'];
  for (const f of s.frames.slice(0, top)) lines.push(`    ${f.pct.toFixed(1).padStart(5)} %  ${f.ms.toFixed(0).padStart(6)} ms  ${f.frame}`);
  lines.push('  by file:');
  for (const f of s.files.slice(0, 10)) lines.push(`    ${f.pct.toFixed(1).padStart(5)} %  ${f.ms.toFixed(0).padStart(6)} ms  ${f.frame}`);
  return lines.join('\n');
}

// CLI: node dist/bench/profile.js DIR [TOP]
if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!) && process.argv[2]) {
  process.stdout.write(summarizeProfiles(process.argv[2], Number(process.argv[3] ?? 25)) + '\n');
}
