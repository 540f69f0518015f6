// Flow control (flow-control.ts): credit re-advertised at half the window, auto-tuning
// doubles the window when it is used up within 2 RTT, never beyond the maximum.
import { describe, it, expect } from 'vitest';
import { ReceiveWindow, SendCredit } from '../../src/transport/flow-control.js';

describe('ReceiveWindow', () => {
  it('re-advertises consumed + window once less than half remains', () => {
    const w = new ReceiveWindow(1000, 8000);
    expect(w.receiveTo(1000)).toBe(true);
    expect(w.receiveTo(1001)).toBe(false); // beyond the credit granted
    w.consume(400);
    expect(w.update(0, 10)).toBe(false); // 600 of 1000 left
    w.consume(200);
    expect(w.update(0, 10)).toBe(true); // 400 left < 500
    expect(w.advertised).toBe(600 + 1000);
  });

  it('auto-tunes: the window doubles when it is used up within 2 RTT, up to the maximum', () => {
    const w = new ReceiveWindow(1000, 4000);
    let consumed = 0;
    const sizes: number[] = [];
    for (let t = 0; t < 10; t++) {
      consumed = w.advertised - w.window / 2 + 1; // use just over half of what is left
      w.consume(consumed - w.consumed);
      expect(w.update(t * 5, 10)).toBe(true); // every 5 ms with a 10 ms RTT: fast
      sizes.push(w.window);
    }
    expect(sizes).toEqual([1000, 2000, 4000, 4000, 4000, 4000, 4000, 4000, 4000, 4000]);
  });

  it('does not grow when the updates are further apart than 2 RTT (the path, not the window, limits)', () => {
    const w = new ReceiveWindow(1000, 64_000);
    for (let t = 0; t < 10; t++) {
      w.consume(w.advertised - w.window / 2 + 1 - w.consumed);
      w.update(t * 25, 10);
    }
    expect(w.window).toBe(1000);
  });
});

describe('SendCredit', () => {
  it('only ever raises its limit', () => {
    const c = new SendCredit(100);
    c.used = 60;
    expect(c.available).toBe(40);
    expect(c.raise(50)).toBe(false);
    expect(c.raise(200)).toBe(true);
    expect(c.available).toBe(140);
  });
});
