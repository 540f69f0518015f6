// bench/lib/sealed-frames.ts: the udx-proxy bench system's framing. Frames survive any
// chunking of the byte stream; a changed byte, an out-of-range length or a replayed or
// reordered frame is refused (and everything after it).
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { FRAME_OVERHEAD, FrameOpener, FrameSealer, MAX_FRAME_PLAINTEXT } from '../../bench/lib/sealed-frames.js';

const key = randomBytes(32);
const messages = [1, 5, 64, 1179, 1180, 4000, MAX_FRAME_PLAINTEXT].map((n) => randomBytes(n));

function openAll(stream: Buffer, chunk: (i: number) => number, opener = new FrameOpener(key, 7)): { ok: boolean; got: Buffer[] } {
  const got: Buffer[] = [];
  let ok = true;
  for (let off = 0, i = 0; off < stream.length && ok; i++) {
    const n = Math.max(1, chunk(i));
    ok = opener.push(Buffer.from(stream.subarray(off, off + n)), (p) => got.push(Buffer.from(p)));
    off += n;
  }
  return { ok, got };
}

describe('sealed frames', () => {
  const sealer = new FrameSealer(key, 7);
  const frames = messages.map((m) => sealer.seal(m));
  const stream = Buffer.concat(frames);

  it('a frame is a 3-byte length of the rest (udx framed mode), the ciphertext and a 16-byte tag', () => {
    expect(frames.map((f) => f.length)).toEqual(messages.map((m) => m.length + FRAME_OVERHEAD));
    expect(frames.map((f) => 3 + f.readUIntLE(0, 3))).toEqual(frames.map((f) => f.length));
    expect(frames[2]!.subarray(3, 3 + 64).equals(messages[2]!)).toBe(false);
  });

  it.each([
    ['one chunk', () => stream.length],
    ['1-byte chunks', () => 1],
    ['udx-sized chunks', () => 1180],
    ['random chunks', () => 1 + Math.floor(Math.random() * 3000)],
  ])('opens every frame, in order, from %s', (_name, chunk) => {
    const { ok, got } = openAll(stream, chunk);
    expect(ok).toBe(true);
    expect(got.map((g) => g.toString('hex'))).toEqual(messages.map((m) => m.toString('hex')));
  });

  it('refuses a frame with one changed byte, and everything after it', () => {
    for (const at of [1, 4, 30, frames[0]!.length + frames[1]!.length - 1]) {
      const bad = Buffer.from(stream);
      bad[at] ^= 1;
      const { ok, got } = openAll(bad, () => 700);
      expect(ok).toBe(false);
      expect(got.length).toBeLessThan(messages.length);
    }
  });

  it('refuses a length of 0 or above the bound before reading a body', () => {
    for (const rest of [0, 16, MAX_FRAME_PLAINTEXT + 17, 0xffffff]) {
      const hdr = Buffer.alloc(3);
      hdr.writeUIntLE(rest, 0, 3);
      expect(new FrameOpener(key, 7).push(hdr, () => {})).toBe(false);
    }
  });

  it('refuses a replayed or reordered frame (the nonce counter) and another connection id', () => {
    expect(openAll(Buffer.concat([frames[0]!, frames[0]!]), () => 1e6).ok).toBe(false);
    expect(openAll(Buffer.concat([frames[1]!, frames[0]!]), () => 1e6).ok).toBe(false);
    expect(openAll(frames[0]!, () => 1e6, new FrameOpener(key, 8)).ok).toBe(false);
  });
});
