// The pacer (pacer.ts): a burst of PACING_BURST_PACKETS after idle, then 1.25 × cwnd/srtt,
// each packet allowed PACING_SLACK_MS early.
import { describe, it, expect } from 'vitest';
import { PACING_BURST_PACKETS, PACING_GAIN, PACING_SLACK_MS, Pacer } from '../../src/transport/pacer.js';

/** sends as fast as the pacer allows for `ms`, stepping the clock by 0.01 ms; returns send times */
function drive(p: Pacer, cwnd: number, srtt: number, ms: number, start = 1000): number[] {
  const times: number[] = [];
  for (let now = start; now < start + ms; now += 0.01) {
    while (p.canSend(now)) {
      p.onSent(1200, now, cwnd, srtt);
      times.push(now);
    }
  }
  return times;
}

describe('Pacer', () => {
  it('allows a burst of about PACING_BURST_PACKETS after idle, then paces', () => {
    const p = new Pacer();
    const cwnd = 120_000; // 100 packets
    const srtt = 100; // rate 1.25 packets/ms
    const times = drive(p, cwnd, srtt, 0.005);
    // the burst allowance plus what the 1 ms slack admits at this rate
    const slackPackets = PACING_SLACK_MS * (PACING_GAIN * cwnd) / srtt / 1200;
    expect(times.length).toBeGreaterThanOrEqual(PACING_BURST_PACKETS);
    expect(times.length).toBeLessThanOrEqual(PACING_BURST_PACKETS + Math.ceil(slackPackets) + 1);
  });

  it('sends at 1.25 × cwnd / srtt in steady state', () => {
    const p = new Pacer();
    const cwnd = 120_000;
    const srtt = 100;
    const times = drive(p, cwnd, srtt, 400);
    const steady = times.filter((t) => t >= 1100);
    const rate = steady.length / (times[times.length - 1]! - 1100); // packets per ms
    expect(rate).toBeCloseTo((PACING_GAIN * cwnd) / srtt / 1200, 1);
  });

  it('lets a packet go up to the slack early, and tells the owner when the next may go', () => {
    const p = new Pacer();
    for (let i = 0; i < 30; i++) p.onSent(1200, 0, 12_000, 100); // far ahead of schedule
    const next = p.nextTime();
    expect(next).toBeGreaterThan(0);
    expect(p.canSend(next - 0.001)).toBe(false);
    expect(p.canSend(next)).toBe(true);
  });
});
