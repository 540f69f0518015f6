// How `--workers N` shares the UDP port (src/relay/cluster.ts): each worker its own socket
// with SO_REUSEPORT where the runtime sets it (Node >= 22.12), the cluster's one shared
// socket otherwise (Node 20 ignores dgram's reusePort). The oracle is this runtime itself,
// asked in a child process without the relay's code: can two sockets bind one port?
import { describe, it, expect, afterEach } from 'vitest';
import * as dgram from 'node:dgram';
import { reusePortHolder, reusePortSocket } from '../../src/relay/cluster.js';
import { runtimeHasReusePort, udpSocketsOn } from './cluster-helpers.js';

const open: dgram.Socket[] = [];
afterEach(() => { for (const s of open.splice(0)) { try { s.close(); } catch { /* closed */ } } });

describe('the UDP port of a relay cluster', () => {
  it('holds the port with SO_REUSEPORT exactly where the runtime has it; a worker socket binds beside the holder', async () => {
    const holder = await reusePortHolder({ host: '127.0.0.1', port: 0 });
    if (holder) open.push(holder);
    expect(holder !== undefined).toBe(runtimeHasReusePort());
    if (!holder) return; // Node 20: the workers use the cluster's shared socket (cluster.test.ts)
    const port = holder.address().port;
    const worker = await reusePortSocket('127.0.0.1', port, 1 << 16);
    open.push(worker);
    expect(worker.address().port).toBe(port);
    expect(udpSocketsOn(port)).toBe(2);
  });

  it('a port held by another program without SO_REUSEPORT is not taken over: shared mode, whose bind reports the conflict', async () => {
    const other = dgram.createSocket('udp4');
    open.push(other);
    await new Promise<void>((r) => other.bind(0, '127.0.0.1', () => r()));
    expect(await reusePortHolder({ host: '127.0.0.1', port: other.address().port })).toBeUndefined();
    expect(udpSocketsOn(other.address().port)).toBe(1);
  });
});
