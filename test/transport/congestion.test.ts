// NewReno (congestion.ts): slow start, congestion avoidance, one reduction per recovery
// episode, persistent congestion, and undo when every loss of an episode was spurious.
import { describe, it, expect } from 'vitest';
import { NewReno } from '../../src/transport/congestion.js';

describe('NewReno', () => {
  it('slow start grows by the bytes acked; congestion avoidance by ~one packet per window', () => {
    const cc = new NewReno(1200);
    expect(cc.cwnd).toBe(14720);
    cc.onSent(1200);
    cc.onAcked(1200, 0);
    expect(cc.cwnd).toBe(14720 + 1200);
    cc.onCongestion(1, 2);
    const w = cc.cwnd;
    for (let i = 0; i < Math.round(w / 1200); i++) {
      cc.onSent(1200);
      cc.onAcked(1200, 3);
    }
    expect(cc.cwnd - w).toBeGreaterThan(1000);
    expect(cc.cwnd - w).toBeLessThan(1300);
  });

  it('one reduction per recovery episode; losses of packets sent before it belong to it', () => {
    const cc = new NewReno(1200);
    const e1 = cc.onCongestion(5, 10);
    const after = cc.cwnd;
    expect(after).toBe(14720 / 2);
    expect(cc.onCongestion(8, 11)).toBe(e1); // sent before the episode started at 10
    expect(cc.cwnd).toBe(after);
    expect(cc.onCongestion(12, 20)).toBe(e1 + 1);
    expect(cc.cwnd).toBe(after / 2);
  });

  it('persistent congestion collapses the window to 2 packets', () => {
    const cc = new NewReno(1200);
    cc.onPersistentCongestion();
    expect(cc.cwnd).toBe(2400);
  });

  it('undo: when every loss of the episode was spurious the window and ssthresh come back', () => {
    const cc = new NewReno(1200);
    const e = cc.onCongestion(5, 10, 2);
    cc.onSpuriousLoss(e);
    expect(cc.cwnd).toBe(14720 / 2); // one of the two losses is still real
    cc.onSpuriousLoss(e);
    expect(cc.cwnd).toBe(14720);
    expect(cc.ssthresh).toBe(Infinity);
  });

  it('a spurious loss of an older episode undoes nothing', () => {
    const cc = new NewReno(1200);
    const e1 = cc.onCongestion(5, 10);
    cc.onCongestion(12, 20);
    const w = cc.cwnd;
    cc.onSpuriousLoss(e1);
    expect(cc.cwnd).toBe(w);
  });
});
