// SessionManager's data path without copies: receive() opens a transport message inside the
// datagram (deliver gets a view of it), sendInPlace() seals a caller's view with headroom
// where it lies, and a plaintext that has to wait for a session is copied into the queue.
import { describe, it, expect } from 'vitest';
import { SESSION_HEADROOM, SESSION_TAILROOM } from '../../src/session/session-keys.js';
import { managerPair, type ManagerPair } from './pair-harness.js';

function establish(p: ManagerPair): void {
  p.a.connect(p.bKey);
  p.b.receive(p.aOut.shift()!, 'a');
  p.a.receive(p.bOut.shift()!, 'b');
  p.b.receive(p.aOut.shift()!, 'a'); // the confirming keepalive
}

/** `text` in a buffer with the session layer's headroom and tailroom (and a little more). */
function framed(text: string): Uint8Array {
  const bytes = new TextEncoder().encode(text);
  const view = new Uint8Array(new ArrayBuffer(SESSION_HEADROOM + 4 + bytes.length + SESSION_TAILROOM + 4), SESSION_HEADROOM + 4, bytes.length);
  view.set(bytes);
  return view;
}
const str = (b: Uint8Array): string => new TextDecoder().decode(b);

describe('SessionManager in place', () => {
  it('receive() decrypts inside the datagram: deliver gets a view of its memory', () => {
    const p = managerPair();
    establish(p);
    p.a.send(p.bKey, new TextEncoder().encode('hello'));
    const datagram = p.aOut.shift()!;
    p.b.receive(datagram, 'a');
    const pt = p.delivered.at(-1)!;
    expect(str(pt)).toBe('hello');
    expect(pt.buffer).toBe(datagram.buffer);
    expect(pt.byteOffset).toBe(datagram.byteOffset + SESSION_HEADROOM);
  });

  it('sendInPlace() builds the message around the caller\'s view and encrypts it where it lies', () => {
    const p = managerPair();
    establish(p);
    const view = framed('in place');
    expect(p.a.sendInPlace(p.bKey, view)).toBe(true);
    const packet = p.aOut.shift()!;
    expect(packet.buffer).toBe(view.buffer);
    expect(packet.byteOffset).toBe(view.byteOffset - SESSION_HEADROOM);
    expect(str(view)).not.toBe('in place');
    p.b.receive(packet, 'a');
    expect(str(p.delivered.at(-1)!)).toBe('in place');
    expect(() => p.a.sendInPlace(p.bKey, new TextEncoder().encode('no headroom'))).toThrow(RangeError);
  });

  it('without a session, sendInPlace() copies the plaintext into the queue: the caller may reuse its buffer', () => {
    const p = managerPair();
    const view = framed('queued');
    expect(p.a.sendInPlace(p.bKey, view)).toBe(false);
    view.fill(0x21); // the caller reuses its buffer
    p.b.receive(p.aOut.shift()!, 'a');
    p.a.receive(p.bOut.shift()!, 'b'); // the handshake completes: the queue is flushed
    p.b.receive(p.aOut.shift()!, 'a');
    expect(str(p.delivered.at(-1)!)).toBe('queued');
  });
});
