// A base port with n consecutive free loopback ports, for tests that need MPyC's layout.
import { createServer } from 'node:net';

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen({ host: '127.0.0.1', port }, () => s.close(() => resolve(true)));
  });
}

export async function freeBase(n: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20000 + Math.floor(Math.random() * 30000);
    let ok = true;
    for (let k = 0; k < n && ok; k++) ok = await canListen(base + k);
    if (ok) return base;
  }
  throw new Error('no free port range found');
}
