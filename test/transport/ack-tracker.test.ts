// The ACK policy (ack-tracker.ts) on a fake clock: immediate on a gap, every ACK_EVERY-th
// ack-eliciting packet, otherwise within MAX_ACK_DELAY_MS; ack-only packets never elicit.
import { describe, it, expect } from 'vitest';
import { ACK_EVERY, AckTracker, MAX_ACK_DELAY_MS, MAX_ACK_RANGES } from '../../src/transport/ack-tracker.js';

describe('AckTracker', () => {
  it('one in-order ack-eliciting packet waits at most max_ack_delay', () => {
    const a = new AckTracker();
    a.onReceived(0, 10, true);
    expect(a.owed).toBe(true);
    expect(a.mustSend(10)).toBe(false);
    expect(a.nextDeadline()).toBe(10 + MAX_ACK_DELAY_MS);
    expect(a.mustSend(10 + MAX_ACK_DELAY_MS - 0.01)).toBe(false);
    expect(a.mustSend(10 + MAX_ACK_DELAY_MS)).toBe(true);
    a.onAckSent();
    expect(a.owed).toBe(false);
    expect(a.nextDeadline()).toBe(Infinity);
  });

  it(`every ${ACK_EVERY}th ack-eliciting packet is acknowledged at once`, () => {
    const a = new AckTracker();
    for (let pn = 0; pn < ACK_EVERY - 1; pn++) a.onReceived(pn, 0, true);
    expect(a.mustSend(0)).toBe(false);
    a.onReceived(ACK_EVERY - 1, 0, true);
    expect(a.mustSend(0)).toBe(true);
    expect(a.nextDeadline()).toBe(0);
  });

  it('a new gap (or a late packet) is acknowledged at once; an old gap is not', () => {
    const a = new AckTracker();
    a.onReceived(0, 0, true);
    a.onAckSent();
    a.onReceived(2, 1, true); // 1 missing: a new gap
    expect(a.mustSend(1)).toBe(true);
    a.onAckSent();
    a.onReceived(3, 2, true); // in order after the gap: the old gap does not count
    expect(a.mustSend(2)).toBe(false);
    a.onAckSent();
    a.onReceived(1, 3, true); // late
    expect(a.mustSend(3)).toBe(true);
    expect(a.ranges).toEqual([[0, 3]]);
  });

  it('ack-only packets are recorded but never elicit an ACK', () => {
    const a = new AckTracker();
    for (let pn = 0; pn < 10; pn++) a.onReceived(pn, pn, false);
    expect(a.owed).toBe(false);
    expect(a.mustSend(100)).toBe(false);
    expect(a.ranges).toEqual([[0, 9]]);
  });

  it('keeps the newest ranges only and treats older packets as duplicates', () => {
    const a = new AckTracker();
    for (let i = 0; i < MAX_ACK_RANGES + 10; i++) a.onReceived(i * 2, i, false);
    expect(a.ranges.length).toBe(MAX_ACK_RANGES);
    expect(a.ranges[0]).toEqual([(MAX_ACK_RANGES + 9) * 2, (MAX_ACK_RANGES + 9) * 2]);
    expect(a.isDuplicate(0)).toBe(true); // older than every range tracked
    expect(a.isDuplicate(a.ranges[0]![0])).toBe(true);
    expect(a.isDuplicate(a.ranges[0]![0] - 1)).toBe(false); // a gap still tracked
  });

  it('reports the delay since the largest packet arrived', () => {
    const a = new AckTracker();
    a.onReceived(5, 100, true);
    a.onReceived(3, 101, true); // older: does not move the reference time
    expect(a.ackDelayUs(101.5)).toBe(1500);
  });
});
