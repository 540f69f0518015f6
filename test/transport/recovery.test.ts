// Loss recovery (recovery.ts) on a fake clock: packet/time threshold loss, PTO backoff and
// its cap, persistent congestion, spurious-loss detection with NewReno undo, path change.
import { describe, it, expect } from 'vitest';
import { Recovery, type SentPacket } from '../../src/transport/recovery.js';
import { NewReno } from '../../src/transport/congestion.js';
import { RttEstimator } from '../../src/transport/rtt.js';
import { MAX_ACK_DELAY_MS } from '../../src/transport/ack-tracker.js';

function setup() {
  const rtt = new RttEstimator();
  const cc = new NewReno(1200);
  const acked: number[] = [];
  const lost: number[] = [];
  const rec = new Recovery(rtt, cc, { onAcked: (p) => acked.push(p.pn), onLost: (p) => lost.push(p.pn) });
  const send = (time: number, size = 1200): SentPacket => {
    const p: SentPacket = { pn: rec.nextPn++, time, size, ackEliciting: true, inFlight: true, frames: [] };
    rec.onSent(p);
    return p;
  };
  return { rtt, cc, rec, acked, lost, send };
}

describe('Recovery: loss detection', () => {
  it('declares a packet lost once 3 later packets are acknowledged', () => {
    const { rec, lost, send } = setup();
    for (let i = 0; i < 5; i++) send(i);
    rec.onAck(3, 0, [[3, 3]], 20);
    expect(lost).toEqual([0]); // 3 ≥ 0 + 3, but not 1 + 3
    rec.onAck(4, 0, [[3, 4]], 21);
    expect(lost).toEqual([0, 1]);
  });

  it('declares a packet lost by time: 9/8 RTT after it was sent when a later one is acked', () => {
    const { rec, lost, send, rtt } = setup();
    send(0);
    send(1);
    rec.onAck(1, 0, [[1, 1]], 21); // RTT sample 20 ms
    expect(rtt.smoothed).toBe(20);
    expect(lost).toEqual([]);
    expect(rec.lossTime).toBeCloseTo(0 + (9 / 8) * 20);
    rec.onTimer(rec.lossTime, 2);
    expect(lost).toEqual([0]);
  });

  it('the loss timer declares the packet lost when it fires, even where now − delay rounds below the send time', () => {
    // 500.002 + 22.5 = 522.502, but 522.502 − 22.5 = 500.00199999999995 < 500.002: comparing
    // the send time with `now − delay` left the packet unlost and the timer at `now` (a
    // deadline in the past right after the timer ran)
    const { rec, lost, send, rtt } = setup();
    send(500.002);
    send(500.5);
    rec.onAck(1, 0, [[1, 1]], 520.5); // RTT sample exactly 20 ms: loss delay 22.5 ms
    expect(rtt.latest).toBe(20);
    expect(rec.lossTime).toBe(500.002 + 22.5);
    rec.onTimer(rec.lossTime, 2);
    expect(lost).toEqual([0]);
    expect(rec.lossTime).toBe(Infinity);
  });

  it('rejects an ACK of a packet never sent', () => {
    const { rec, send } = setup();
    send(0);
    expect(rec.onAck(5, 0, [[5, 5]], 1)).toBe(false);
  });
});

describe('Recovery: PTO', () => {
  it('backs off exponentially from srtt + 4·rttvar + max_ack_delay, capped at 2 s', () => {
    const { rec, rtt, send } = setup();
    rtt.update(10, 0); // srtt 10, rttvar 5
    const base = 10 + 4 * 5 + MAX_ACK_DELAY_MS;
    send(0);
    expect(rec.ptoDeadline()).toBe(base);
    const periods: number[] = [];
    let last = 0;
    for (let k = 0; k < 10; k++) {
      const d = rec.ptoDeadline();
      periods.push(d - last);
      last = d;
      expect(rec.onTimer(d - 0.001, 2)).toBeNull(); // not yet
      const probes = rec.onTimer(d, 2);
      expect(probes?.[0]?.pn).toBe(0); // the oldest unacknowledged packet is repeated
      send(d); // the probe itself
    }
    // base, 2·base, 4·base, … until the 2 s cap
    expect(periods.slice(0, 6)).toEqual([base, 2 * base, 4 * base, 8 * base, 16 * base, 32 * base]);
    expect(periods.slice(6)).toEqual([2000, 2000, 2000, 2000]);
    expect(rec.ptoDeadline() - last).toBe(2000);
    expect(rec.ptoCount).toBe(10);
  });

  it('nothing ack-eliciting in flight: no PTO; an ACK resets the backoff', () => {
    const { rec, rtt, send } = setup();
    expect(rec.ptoDeadline()).toBe(Infinity);
    rtt.update(10, 0);
    send(0);
    send(1);
    rec.onTimer(rec.ptoDeadline(), 2);
    expect(rec.ptoCount).toBe(1);
    rec.onAck(1, 0, [[1, 1]], 50);
    expect(rec.ptoCount).toBe(0);
  });

  it('probes repeat the oldest ack-eliciting packets', () => {
    const { rec, send } = setup();
    for (let i = 0; i < 5; i++) send(i);
    expect(rec.onTimer(rec.ptoDeadline(), 2)?.map((p) => p.pn)).toEqual([0, 1]);
  });
});

describe('Recovery: congestion signals', () => {
  it('contiguous losses spanning more than 3 PTO are persistent congestion: cwnd → 2 packets', () => {
    const { rec, cc, send } = setup();
    const first = send(0);
    void first;
    rec.onAck(0, 0, [[0, 0]], 10); // RTT sample 10 ms: PTO ≈ 32 ms, ×3 ≈ 96 ms
    for (let t = 20; t <= 320; t += 20) send(t); // pn 1..16 over 300 ms
    send(330);
    rec.onAck(17, 0, [[17, 17]], 340);
    expect(cc.cwnd).toBe(cc.minWindow);
  });

  it('the same losses within a short span only halve the window', () => {
    const { rec, cc, send } = setup();
    send(0);
    rec.onAck(0, 0, [[0, 0]], 10);
    const before = cc.cwnd;
    for (let t = 20; t <= 40; t += 5) send(t); // pn 1..5 over 20 ms
    send(45);
    rec.onAck(6, 0, [[6, 6]], 55); // acked (slow start: +1200), then 1..3 lost
    expect(cc.cwnd).toBe((before + 1200) / 2);
  });

  it('a loss acknowledged later was spurious: the packet threshold grows and NewReno undoes the reduction', () => {
    const { rec, cc, send } = setup();
    for (let i = 0; i < 8; i++) send(i);
    const before = cc.cwnd + 0;
    rec.onAck(7, 0, [[2, 7]], 20); // 0 and 1 declared lost (reordered, in fact)
    expect(rec.packetsLost).toBe(2);
    const reduced = cc.cwnd;
    expect(reduced).toBeLessThan(before);
    rec.onAck(7, 0, [[0, 7]], 21);
    expect(rec.spuriousLosses).toBe(2);
    expect(rec.packetThreshold).toBe(8); // reordering distance 7 − 0 + 1
    expect(cc.cwnd).toBeGreaterThanOrEqual(before);
  });

  it('spurious-loss detection does a merge walk over many ranges (work bounded by ranges + remembered)', () => {
    const { rec, send } = setup();
    for (let i = 0; i < 600; i++) send(i);
    // acknowledge every other packet: 299 losses remembered
    const ranges: Array<[number, number]> = [];
    for (let pn = 599; pn >= 1; pn -= 2) ranges.push([pn, pn]);
    rec.onAck(599, 0, ranges.slice(0, 256), 700);
    expect(rec.packetsLost).toBeGreaterThan(200);
    // now the receiver reports the "lost" ones too
    const all: Array<[number, number]> = [[0, 599]];
    rec.onAck(599, 0, all, 701);
    expect(rec.spuriousLosses).toBe(rec.packetsLost);
  });
});

describe('Recovery: path change', () => {
  it('packets in flight leave the window, stay acknowledgeable, and are lost only after the old loss delay', () => {
    const { rec, cc, send, lost, acked } = setup();
    send(0);
    rec.onAck(0, 0, [[0, 0]], 40); // old path: 40 ms RTT
    send(41);
    send(42);
    expect(cc.bytesInFlight).toBe(2400);
    rec.pathChanged(43);
    expect(cc.bytesInFlight).toBe(0);
    // new path packets overtake: 3 acknowledged later packets do not make the old ones lost
    for (let i = 0; i < 4; i++) send(44 + i);
    rec.onAck(6, 0, [[3, 6]], 50);
    expect(lost).toEqual([]);
    rec.onAck(6, 0, [[1, 6]], 60); // the old path delivered after all
    expect(acked).toContain(1);
    expect(acked).toContain(2);
    expect(lost).toEqual([]);
  });

  it('an old-path packet never acknowledged is lost at its old-path deadline', () => {
    const { rec, send, lost } = setup();
    send(0);
    rec.onAck(0, 0, [[0, 0]], 40);
    send(41);
    rec.pathChanged(42);
    const deadline = 41 + (9 / 8) * 40 + MAX_ACK_DELAY_MS;
    expect(rec.lossTime).toBeCloseTo(deadline);
    rec.onTimer(deadline - 1, 2);
    expect(lost).toEqual([]);
    rec.onTimer(deadline, 2);
    expect(lost).toEqual([1]);
  });
});
