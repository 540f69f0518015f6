// Packets are built in their final memory (packet-builder.ts PacketBuffers): each one a
// view with the owner's headroom before it and tailroom after it, never overlapping the
// room or bytes of another packet, so the layers below (inner type, session header and
// tag, relay SEND header) write in place and the stream bytes are copied exactly once.
import { describe, it, expect } from 'vitest';
import { Connection } from '../../src/transport/connection.js';
import { PacketBuffers, SLAB_BYTES } from '../../src/transport/packet-builder.js';
import { parseOk } from './packets.js';

const HEAD = 50;
const TAIL = 16;

function pair(): { a: Connection; b: Connection } {
  return {
    a: new Connection({ side: 0, epoch: 1, headroom: HEAD, tailroom: TAIL }, 0),
    b: new Connection({ side: 1, epoch: 2, headroom: HEAD, tailroom: TAIL }, 0),
  };
}

describe('packet memory', () => {
  it('every packet has its headroom and tailroom, and what a lower layer writes there touches no other packet', () => {
    const { a, b } = pair();
    const id = a.openStream(new Uint8Array([1]));
    const data = new Uint8Array(10_000).map((_, i) => i * 7); // within the initial window
    a.write(id, data);
    const packets: Uint8Array[] = [];
    for (let t = 0; t < 2000; t += 5) packets.push(...a.poll(t)); // paced
    expect(packets.length).toBeGreaterThanOrEqual(9); // 10 000 bytes in 1200-byte packets
    const copies = packets.map((p) => new Uint8Array(p));
    const head = (p: Uint8Array): Uint8Array => new Uint8Array(p.buffer, p.byteOffset - HEAD, HEAD);
    const tail = (p: Uint8Array): Uint8Array => new Uint8Array(p.buffer, p.byteOffset + p.length, TAIL);
    packets.forEach((p, i) => {
      expect(p.byteOffset).toBeGreaterThanOrEqual(HEAD);
      expect(p.byteOffset + p.length + TAIL).toBeLessThanOrEqual(p.buffer.byteLength);
      // a lower layer's header and tag, written around the packet: a mark of its own each
      head(p).fill(2 * i + 1);
      tail(p).fill(2 * i + 2);
    });
    packets.forEach((p, i) => {
      expect(p).toEqual(copies[i]);
      expect(head(p).every((x) => x === 2 * i + 1)).toBe(true);
      expect(tail(p).every((x) => x === 2 * i + 2)).toBe(true);
    });
    // and the peer reads exactly the bytes written
    for (const p of packets) expect(b.receive(p, 1)).toBe('ok');
    const got: number[] = [];
    let c;
    while ((c = b.read(id))) got.push(...c);
    expect(new Uint8Array(got)).toEqual(data);
  });

  it('small packets share a slab; a packet larger than a slab gets memory of its own', () => {
    const bufs = new PacketBuffers(HEAD, TAIL);
    bufs.begin(1200).set([1, 2, 3]);
    const p1 = bufs.finish(3);
    bufs.begin(1200).set([4, 5]);
    const p2 = bufs.finish(2);
    expect(p2.buffer).toBe(p1.buffer);
    expect(p2.byteOffset).toBe(p1.byteOffset + 3 + TAIL + HEAD);
    expect([...p1, ...p2]).toEqual([1, 2, 3, 4, 5]);
    const big = bufs.begin(SLAB_BYTES);
    expect(big.buffer).not.toBe(p1.buffer);
    expect(big.length).toBe(SLAB_BYTES);
    // an uncommitted begin() keeps nothing: the next packet starts at the same place
    const q1 = bufs.begin(10);
    const q2 = bufs.begin(10);
    expect(q2.byteOffset).toBe(q1.byteOffset);
  });

  it('packets without stream data (an ACK) are built the same way', () => {
    const { a, b } = pair();
    const id = a.openStream(new Uint8Array([1]));
    a.write(id, new Uint8Array(100));
    for (const p of a.poll(0)) b.receive(p, 1);
    const acks = b.poll(10); // the ACK delay has passed
    expect(acks.length).toBe(1);
    expect(parseOk(acks[0]!).frames.map((f) => f.type)).not.toContain('stream');
    expect(acks[0]!.byteOffset).toBeGreaterThanOrEqual(HEAD);
    expect(acks[0]!.byteOffset + acks[0]!.length + TAIL).toBeLessThanOrEqual(acks[0]!.buffer.byteLength);
  });
});
