// Shared by the relay cluster tests: what the kernel and the runtime say about UDP sockets.
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

/** IPv4 UDP sockets bound to 127.0.0.1:`port` in this network namespace (/proc/net/udp) */
export function udpSocketsOn(port: number): number {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return readFileSync('/proc/net/udp', 'utf8').split('\n').slice(1).filter((l) => l.trim().split(/\s+/)[1] === local).length;
}

/** whether the Node at `node` binds two reusePort sockets to one port (asked in a fresh process, without the relay's code) */
export function runtimeHasReusePort(node = process.execPath): boolean {
  const script = `const d = require('node:dgram');
const o = { type: 'udp4', reusePort: true };
const a = d.createSocket(o);
a.bind({ port: 0, address: '127.0.0.1', exclusive: true }, () => {
  const b = d.createSocket(o);
  b.on('error', () => { console.log('no'); process.exit(0); });
  b.bind({ port: a.address().port, address: '127.0.0.1', exclusive: true }, () => { console.log('yes'); process.exit(0); });
});`;
  return spawnSync(node, ['-e', script], { encoding: 'utf8', timeout: 10_000 }).stdout.trim() === 'yes';
}
