// The architectural floor of "an agent process on each side": two bare Node processes that
// carry one TCP connection as UDP datagrams (≤ 1200 bytes), with no encryption, no
// reliability and no framing. Same topology as the agents' direct path (client → A → UDP
// → B → server and back), so  agent direct − floor  is what the agent's own code costs
// and  floor − raw TCP  is what two extra process hops cost on this machine.
// Ping-pong only (no loss recovery: a bulk transfer would overflow socket buffers).
//   A: node forwarder.js --side a --tcp-port L --host HA --udp-port UA --peer-host HB --peer-udp UB
//   B: node forwarder.js --side b --host HB --udp-port UB --peer-host HA --peer-udp UA --target-port T
import { createServer, connect, type Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { createUdpSocket } from '../src/common/udp-socket.js';

const MAX_DATAGRAM = 1200;
const { values } = parseArgs({ options: {
  side: { type: 'string' }, 'tcp-port': { type: 'string' }, 'udp-port': { type: 'string' }, 'peer-udp': { type: 'string' },
  'target-port': { type: 'string' }, host: { type: 'string', default: '127.0.0.1' }, 'peer-host': { type: 'string', default: '127.0.0.1' },
} });
const host = values.host!;
const peerHost = values['peer-host']!;
const peerPort = Number(values['peer-udp']);
// the agent's own socket set-up: IP literals answered in the same call (no resolver tick per send)
const udp = createUdpSocket({ type: 'udp4' });
let tcp: Socket | null = null;
const pending: Buffer[] = [];

function attach(s: Socket): void {
  tcp = s;
  s.setNoDelay(true);
  for (const b of pending.splice(0)) s.write(b);
  s.on('data', (d: Buffer) => {
    for (let off = 0; off < d.length; off += MAX_DATAGRAM) udp.send(d.subarray(off, off + MAX_DATAGRAM), peerPort, peerHost);
  });
  s.on('close', () => { tcp = null; });
  s.on('error', () => s.destroy());
}

udp.on('message', (m) => {
  if (tcp) { tcp.write(m); return; }
  pending.push(m);
  if (values.side === 'b' && pending.length === 1) {
    const s = connect({ host: '127.0.0.1', port: Number(values['target-port']) }, () => attach(s));
    s.on('error', () => s.destroy());
  }
});
udp.bind(Number(values['udp-port']), host, () => {
  if (values.side === 'a') {
    const srv = createServer((s) => attach(s));
    srv.listen({ host: '127.0.0.1', port: Number(values['tcp-port']) }, () => process.stdout.write(JSON.stringify({ msg: 'ready' }) + '\n'));
  } else process.stdout.write(JSON.stringify({ msg: 'ready' }) + '\n');
});
process.on('SIGTERM', () => process.exit(0));
