// Each feature docs/protocol/transport.md claims, shown end to end in the simulator so that
// disabling the feature turns a test red: pacing, stream and connection flow control,
// receive-window auto-tuning, the ACK delay, tail-loss recovery by PTO, path-change
// handling, keepalive and idle timeout, the stale-epoch answer.
import { describe, it, expect } from 'vitest';
import { SimPair } from '../../src/sim/harness.js';
import { INITIAL_CONNECTION_CREDIT, INITIAL_STREAM_CREDIT } from '../../src/transport/stream.js';
import { MAX_ACK_DELAY_MS } from '../../src/transport/ack-tracker.js';
import { parseOk } from './packets.js';
import type { TransportEvent } from '../../src/transport/types.js';

/** b reads everything (when `read`), returns the bytes read per stream and b's events */
function reader(sim: SimPair, read = true) {
  const got = new Map<number, number>();
  const events: TransportEvent[] = [];
  sim.b.onEvents = (evs) => {
    for (const e of evs) {
      events.push(e);
      if (!read || !('id' in e)) continue;
      let c;
      while ((c = sim.b.conn.read(e.id))) got.set(e.id, (got.get(e.id) ?? 0) + c.length);
    }
  };
  return { got, events };
}

describe('pacing', () => {
  it('an application burst on a large window leaves spread over the RTT, not at one instant', () => {
    const sim = new SimPair(1, { ab: { delayMs: 20 }, ba: { delayMs: 20 } });
    sim.keepTrace = true;
    reader(sim);
    let id = -1;
    sim.at(0, () => {
      id = sim.a.conn.openStream(new Uint8Array([1]));
      sim.a.conn.write(id, new Uint8Array(600_000)); // grows the window
    });
    const burstAt = 3000;
    sim.at(burstAt, () => sim.a.conn.write(id, new Uint8Array(200_000)));
    sim.run(6000);
    expect(sim.a.conn.stats().cwnd).toBeGreaterThan(300_000); // the window would allow it all at once
    const sends = sim.trace.filter(([t, dir, len]) => dir === 'a' && t >= burstAt && len > 1000).map(([t]) => t);
    expect(sends.length).toBeGreaterThan(150);
    const spread = sends[sends.length - 1]! - sends[0]!;
    // 1.25 × cwnd per srtt: 200 kB take about srtt · 200 kB / (1.25 · cwnd) ms
    const s = sim.a.conn.stats();
    expect(spread).toBeGreaterThan((0.7 * s.smoothedRttMs * 200_000) / (1.25 * s.cwnd));
    // and no millisecond carries more than the burst allowance plus one slack's worth
    const perMs = new Map<number, number>();
    for (const t of sends) perMs.set(Math.floor(t), (perMs.get(Math.floor(t)) ?? 0) + 1);
    const ratePerMs = (1.25 * s.cwnd) / s.smoothedRttMs / 1200;
    expect(Math.max(...perMs.values())).toBeLessThanOrEqual(10 + 2 * ratePerMs + 1);
  });
});

describe('flow control', () => {
  it('a stream whose reader does not read receives no more than its credit; the writer is told to wait', () => {
    const sim = new SimPair(2, { ab: { delayMs: 5 }, ba: { delayMs: 5 } });
    const { events } = reader(sim, false);
    let id = -1;
    let accepted = 0;
    sim.at(0, () => {
      id = sim.a.conn.openStream(new Uint8Array([1]));
      accepted = sim.a.conn.write(id, new Uint8Array(4 * 1024 * 1024));
    });
    sim.run(3000);
    expect(events.some((e) => e.type === 'connectionClosed')).toBe(false);
    expect(sim.b.conn.readable(id)).toBe(INITIAL_STREAM_CREDIT);
    expect(accepted).toBeLessThan(4 * 1024 * 1024); // the send buffer filled: back-pressure
    expect(sim.a.conn.checkInvariants()).toBeNull();
  });

  it('many unread streams together receive no more than the connection credit', () => {
    const sim = new SimPair(3, { ab: { delayMs: 5 }, ba: { delayMs: 5 } });
    const { events } = reader(sim, false);
    const ids: number[] = [];
    sim.at(0, () => {
      for (let i = 0; i < 8; i++) {
        const id = sim.a.conn.openStream(new Uint8Array([i]));
        ids.push(id);
        sim.a.conn.write(id, new Uint8Array(INITIAL_STREAM_CREDIT));
      }
    });
    sim.run(3000);
    expect(events.some((e) => e.type === 'connectionClosed')).toBe(false);
    const total = ids.reduce((s, id) => s + sim.b.conn.readable(id), 0);
    expect(total).toBe(INITIAL_CONNECTION_CREDIT); // 8 × 256 KiB wanted, 1 MiB allowed
  });

  it('auto-tuning: a bulk stream on a long fat path is not held to the initial window', () => {
    // 100 Mbit/s × 80 ms = 1 MB in flight needed; 256 KiB of credit per RTT would cap it at ~26 Mbit/s
    const sim = new SimPair(4, { ab: { delayMs: 40, rateBytesPerMs: 12_500, queueBytes: 1_000_000 }, ba: { delayMs: 40 } });
    const { got } = reader(sim);
    let id = -1;
    let off = 0;
    const total = 20_000_000;
    const chunk = new Uint8Array(256 * 1024);
    const pump = () => {
      while (off < total) {
        const n = sim.a.conn.write(id, chunk.subarray(0, Math.min(chunk.length, total - off)));
        if (n === 0) break;
        off += n;
      }
    };
    sim.a.onEvents = (evs) => evs.forEach((e) => e.type === 'writable' && pump());
    sim.at(0, () => {
      id = sim.a.conn.openStream(new Uint8Array([1]));
      pump();
    });
    const end = sim.run(60_000, () => (got.get(id) ?? 0) >= total);
    const mbps = (total * 8) / (end * 1000);
    expect(got.get(id)).toBe(total);
    expect(mbps).toBeGreaterThan(35);
  });
});

describe('ACK timing', () => {
  it('one packet with nothing to answer is acknowledged max_ack_delay after it arrived, alone', () => {
    const sim = new SimPair(5, { ab: { delayMs: 10 }, ba: { delayMs: 10 } });
    sim.keepTrace = true;
    reader(sim);
    sim.at(100, () => sim.a.conn.write(sim.a.conn.openStream(new Uint8Array([1])), new Uint8Array(100)));
    sim.run(300);
    // (after the first keepalive PING each side sends when it starts)
    const fromB = sim.trace.filter(([t, dir]) => dir === 'b' && t > 50);
    expect(fromB.length).toBe(1);
    expect(fromB[0]![0]).toBeCloseTo(110 + MAX_ACK_DELAY_MS, 5);
  });

  it('request/response: the ACK of a request rides on the response (no standalone ACK)', () => {
    const sim = new SimPair(6, { ab: { delayMs: 10 }, ba: { delayMs: 10 } });
    const sent: Array<[number, Uint8Array]> = [];
    const origB = sim.b.conn.poll.bind(sim.b.conn);
    sim.b.conn.poll = (now) => {
      const o = origB(now);
      o.forEach((p) => sent.push([now, p]));
      return o;
    };
    sim.b.onEvents = (evs) => {
      for (const e of evs) {
        if (e.type !== 'open' && e.type !== 'readable') continue;
        let c;
        while ((c = sim.b.conn.read(e.id))) sim.b.conn.write(e.id, c.slice()); // echo at once
      }
    };
    sim.at(100, () => sim.a.conn.write(sim.a.conn.openStream(new Uint8Array([1])), new Uint8Array(100)));
    sim.run(115);
    const bPackets = sent.filter(([t]) => t > 50).map(([, p]) => parseOk(p)); // after the start-up PING
    expect(bPackets.length).toBe(1);
    expect(bPackets[0]!.frames.map((f) => f.type).sort()).toEqual(['ack', 'stream']);
  });
});

describe('ACK timing: data the receiver already has', () => {
  it('is acknowledged at once, every copy: both probes of a PTO get an ACK of their own', () => {
    // b's ACKs are lost for a while, so a's PTO probes repeat data b already has. Each probe
    // is answered the moment it arrives; coalesced into one ACK max_ack_delay later, the
    // second probe would add nothing on a lossy return path (an ACK lost = a PTO lost)
    const sim = new SimPair(8, { ab: { delayMs: 10 }, ba: { delayMs: 10 } });
    sim.keepTrace = true;
    reader(sim);
    sim.at(100, () => sim.a.conn.write(sim.a.conn.openStream(new Uint8Array([1])), new Uint8Array(100)));
    sim.ba.blackhole(100, 1500);
    sim.run(1400);
    const probes = sim.trace.filter(([t, dir]) => dir === 'a' && t > 101).map(([t]) => t);
    const acks = sim.trace.filter(([t, dir]) => dir === 'b' && t > 110 + MAX_ACK_DELAY_MS).map(([t]) => t); // after the original's ACK
    expect(probes.length).toBeGreaterThanOrEqual(6); // three PTOs or more, two probes each
    expect(acks).toEqual(probes.map((t) => t + 10)); // one ACK per probe, as it arrives
    expect(sim.a.conn.stats().ptoCount).toBe(probes.length / 2);
  });
});

describe('tail loss: the PTO', () => {
  it('a lost last message is re-sent after about one PTO, not after a keepalive or TCP-like RTO', () => {
    const sim = new SimPair(7, { ab: { delayMs: 10 }, ba: { delayMs: 10 } });
    const { got } = reader(sim);
    let id = -1;
    sim.at(0, () => {
      id = sim.a.conn.openStream(new Uint8Array([1]));
      sim.a.conn.write(id, new Uint8Array(100));
    });
    sim.ab.blackhole(500, 501); // the next message is lost
    sim.at(500, () => sim.a.conn.write(id, new Uint8Array(100)));
    const end = sim.run(20_000, () => (got.get(id) ?? 0) >= 200);
    expect(got.get(id)).toBe(200);
    // one RTT to find out is impossible; srtt + 4·rttvar + max_ack_delay + one way ≈ 20–70 ms
    expect(end - 500).toBeLessThan(100);
  });
});

describe('path change', () => {
  it('relay → direct with the old path still delivering: nothing is sent twice, the RTT restarts', () => {
    const sim = new SimPair(8, { ab: { delayMs: 30 }, ba: { delayMs: 30 } });
    const { got } = reader(sim);
    let id = -1;
    const data = new Uint8Array(256 * 1024);
    const pump = () => {
      while (sim.a.conn.write(id, data) > 0);
    };
    sim.a.onEvents = (evs) => evs.forEach((e) => e.type === 'writable' && pump());
    sim.at(0, () => {
      id = sim.a.conn.openStream(new Uint8Array([1]));
      pump();
    });
    let before = { lost: 0, retransmitted: 0, spurious: 0 };
    sim.at(700, () => {
      const s = sim.a.conn.stats();
      before = { lost: s.packetsLost, retransmitted: s.packetsRetransmitted, spurious: s.spuriousLosses };
    });
    sim.switchPath(700, { ab: { delayMs: 3 }, ba: { delayMs: 3 } });
    let rttAfter = 0;
    sim.at(760, () => (rttAfter = sim.a.conn.stats().smoothedRttMs));
    sim.run(1000);
    const s = sim.a.conn.stats();
    expect(before.lost).toBe(0); // a clean path: any loss after the switch would be spurious
    expect(got.get(id)).toBeGreaterThan(2_000_000);
    // packets overtaken by the faster new path are not declared lost, so not re-sent
    expect(s.packetsLost - before.lost).toBe(0);
    expect(s.packetsRetransmitted - before.retransmitted).toBe(0);
    // the estimator restarted: it reflects the 6 ms path, not the 60 ms one
    expect(rttAfter).toBeLessThan(30);
  });
});

describe('keepalive and idle timeout', () => {
  it('an idle connection sends a PING every keepAliveMs and closes when the peer is silent for idleTimeoutMs', () => {
    const sim = new SimPair(9, { ab: { delayMs: 5 }, ba: { delayMs: 5 } }, { idleTimeoutMs: 3000, keepAliveMs: 1000 });
    sim.keepTrace = true;
    const evA: TransportEvent[] = [];
    sim.a.onEvents = (evs) => evA.push(...evs);
    reader(sim);
    sim.at(0, () => sim.a.conn.write(sim.a.conn.openStream(new Uint8Array([1])), new Uint8Array(10)));
    sim.ba.blackhole(2000, 100_000); // b goes silent at 2 s
    sim.run(10_000);
    const pings = sim.trace.filter(([t, dir]) => dir === 'a' && t > 500 && t < 2000);
    expect(pings.length).toBeGreaterThanOrEqual(1);
    const closed = evA.find((e) => e.type === 'connectionClosed');
    expect(closed && closed.type === 'connectionClosed' && closed.reason).toBe('idle timeout');
  });
});
