// Free-port probing for tools that need a layout of several consecutive loopback ports
// (the demo, tests and benchmarks that run several parties on one machine).
import { createServer } from 'node:net';

/** Whether a TCP listener can bind 127.0.0.1:port right now. */
export function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen({ host: '127.0.0.1', port }, () => s.close(() => resolve(true)));
  });
}

/**
 * `count` disjoint ranges of `width` consecutive ports, each free on 127.0.0.1, with bases
 * on multiples of 10 in 20000–59990 (several parties, agents or bench endpoints on one
 * machine each need their own range).
 */
export async function freeBases(count: number, width: number): Promise<number[]> {
  const bases: number[] = [];
  for (let attempt = 0; attempt < 500 && bases.length < count; attempt++) {
    const base = 20000 + 10 * Math.floor(Math.random() * 4000);
    if (bases.some((b) => Math.abs(b - base) < width)) continue;
    let ok = true;
    for (let k = 0; k < width && ok; k++) ok = await canListen(base + k);
    if (ok) bases.push(base);
  }
  if (bases.length < count) throw new Error('no free port ranges on 127.0.0.1');
  return bases;
}
