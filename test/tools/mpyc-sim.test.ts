import { describe, it, expect } from 'vitest';
import { createServer, connect, type Server } from 'node:net';
import { runParty, MpycSimError, type PartyOptions } from '../../src/tools/mpyc-sim.js';
import { ByteQueue, encodeGreeting, encodeHeader, parseHeader, picklePid, prssKeyCount } from '../../src/tools/mpyc-wire.js';
import { streamBytes } from '../../src/tools/mpyc-payload.js';
import { freeBase } from './ports.js';

/** Brute force of MPyC's Runtime._prss_keys_to_peer count over combinations(range(m), m-t). */
function bruteKeys(m: number, t: number, client: number, server: number): number {
  let n = 0;
  const size = m - t;
  const rec = (start: number, chosen: number[]): void => {
    if (chosen.length === size) { if (chosen[0] === client && chosen.includes(server)) n++; return; }
    for (let i = start; i < m; i++) rec(i + 1, [...chosen, i]);
  };
  rec(0, []);
  return n;
}

describe('MPyC wire format', () => {
  it('PRSS key count equals the brute force over combinations for m <= 7', () => {
    for (let m = 2; m <= 7; m++) {
      for (let t = 0; 2 * t < m; t++) {
        for (let c = 0; c < m; c++) for (let s = c + 1; s < m; s++) expect(prssKeyCount(m, t, c, s), `m=${m} t=${t} ${c}->${s}`).toBe(bruteKeys(m, t, c, s));
      }
    }
  });

  it('greeting is pid u16le then the keys; header is pc i64le and size u32le', () => {
    const g = encodeGreeting(0x0102, [Buffer.alloc(16, 7)]);
    expect(g.length).toBe(18);
    expect([...g.subarray(0, 2)]).toEqual([0x02, 0x01]);
    const h = encodeHeader(-2n, 0x01020304);
    expect([...h]).toEqual([0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x04, 0x03, 0x02, 0x01]);
    expect(parseHeader(h)).toEqual({ pc: -2n, payloadSize: 0x01020304 });
    expect(parseHeader(h.subarray(0, 11))).toBeNull();
  });

  it('pickles a pid as CPython 3.11 does (protocol 4, framed from 4 opcode bytes on)', () => {
    // reference bytes from python3.11 -c "import pickle; print(pickle.dumps(1).hex(), pickle.dumps(300).hex())"
    expect(picklePid(1).toString('hex')).toBe('80044b012e');
    expect(picklePid(300).toString('hex')).toBe('80049504000000000000004d2c012e');
  });

  it('ByteQueue returns exact pieces across chunk boundaries', () => {
    const q = new ByteQueue();
    q.push(Buffer.from([1, 2, 3]));
    q.push(Buffer.from([4, 5]));
    expect(q.read(4)).toEqual(Buffer.from([1, 2, 3, 4]));
    expect(q.read(2)).toBeNull();
    q.push(Buffer.from([6]));
    expect(q.read(2)).toEqual(Buffer.from([5, 6]));
    expect(q.length).toBe(0);
  });

  it('payload streams are deterministic and differ by label', () => {
    expect(streamBytes(37, ['a', 1])).toEqual(streamBytes(37, ['a', 1]));
    expect(streamBytes(37, ['a', 1]).equals(streamBytes(37, ['a', 2]))).toBe(false);
  });
});

function parties(m: number, base: number, extra: Partial<PartyOptions> = {}): PartyOptions[] {
  return Array.from({ length: m }, (_, pid) => ({ m, pid, basePort: base, rounds: 8, bulkBytes: 200_000, timeoutMs: 15_000, ...extra }));
}

/** Loopback TCP proxy; `mutate(offset, byte)` may change each client→server byte. */
function proxy(target: number, mutate: (offset: number, b: number) => number): Promise<{ port: number; server: Server }> {
  return new Promise((resolve) => {
    const server = createServer((down) => {
      const up = connect({ host: '127.0.0.1', port: target });
      let offset = 0;
      down.on('data', (d: Buffer) => {
        const out = Buffer.from(d);
        for (let i = 0; i < out.length; i++) out[i] = mutate(offset + i, out[i]!);
        offset += out.length;
        up.write(out);
      });
      up.pipe(down);
      down.on('end', () => up.end());
      down.on('error', () => up.destroy());
      up.on('error', () => down.destroy());
    });
    server.listen({ host: '127.0.0.1', port: 0 }, () => resolve({ port: (server.address() as { port: number }).port, server }));
  });
}

describe('mpyc-sim parties over loopback TCP', () => {
  it('three parties complete and verify every message', async () => {
    const base = await freeBase(3);
    const stats = await Promise.all(parties(3, base).map(runParty));
    for (const s of stats) {
      expect(s.messagesVerified).toBe(2 * (8 + 1 + 1));
      expect(s.roundLatenciesMs).toHaveLength(8);
      // greeting (pid + one 16-byte PRSS key for m=3) from each lower party, then per peer:
      // 8 rounds of 12+32, a 12+200000 bulk message and a 12+5 shutdown message
      const perPeer = 8 * 44 + 200_012 + 17;
      expect(s.bytesReceived).toBe(2 * perPeer + 18 * s.pid);
      expect(s.bytesSent).toBe(2 * perPeer + 18 * (2 - s.pid));
      expect(s.firstByteMs).not.toBeNull();
    }
  });

  it('a transparent proxy changes nothing (control for the corruption test)', async () => {
    const base = await freeBase(3);
    const p = await proxy(base + 1, (_o, b) => b);
    try {
      const ports = [base, p.port, base + 2];
      const opts = parties(3, base);
      await Promise.all([runParty({ ...opts[0]!, ports }), runParty(opts[1]!), runParty(opts[2]!)]);
    } finally { p.server.close(); }
  });

  it('one flipped payload byte is detected and located', async () => {
    const base = await freeBase(3);
    // party 0 → party 1: greeting is 18 bytes, then the round 0 header (12), payload byte 5
    const p = await proxy(base + 1, (o, b) => (o === 18 + 12 + 5 ? b ^ 0x40 : b));
    try {
      const ports = [base, p.port, base + 2];
      const opts = parties(3, base, { timeoutMs: 4000 });
      const r = await Promise.allSettled([runParty({ ...opts[0]!, ports }), runParty(opts[1]!), runParty(opts[2]!)]);
      const p1 = r[1]!;
      expect(p1.status).toBe('rejected');
      const err = (p1 as PromiseRejectedResult).reason as Error;
      expect(err).toBeInstanceOf(MpycSimError);
      expect(err.message).toMatch(/party 1: round 0 message from party 0: payload byte 5 is/);
    } finally { p.server.close(); }
  });

  it('a flipped header or greeting byte is detected', async () => {
    for (const [offset, re] of [[18 + 3, /unknown pc/], [7, /greeting from party 0: PRSS key 0 byte 5 differs/], [1, /says it is party 256/]] as const) {
      const base = await freeBase(3);
      const p = await proxy(base + 1, (o, b) => (o === offset ? b ^ 0x01 : b));
      try {
        const ports = [base, p.port, base + 2];
        const opts = parties(3, base, { timeoutMs: 3000 });
        const r = await Promise.allSettled([runParty({ ...opts[0]!, ports }), runParty(opts[1]!), runParty(opts[2]!)]);
        expect(r[1]!.status).toBe('rejected');
        expect(((r[1] as PromiseRejectedResult).reason as Error).message).toMatch(re);
      } finally { p.server.close(); }
    }
  });

  it('parties started in any order (one 2 s late) still complete', async () => {
    for (const late of [2, 0]) {
      const base = await freeBase(3);
      const opts = parties(3, base);
      const runs = opts.map((o) => (o.pid === late
        ? new Promise((r) => setTimeout(r, 2000)).then(() => runParty(o))
        : runParty(o)));
      const stats = await Promise.all(runs);
      for (const s of stats) expect(s.messagesVerified).toBe(20);
      // whoever must connect to the late party retried at MPyC's 100 ms interval meanwhile
      const waiter = late === 2 ? stats[0]! : null;
      if (waiter) expect(waiter.connectAttempts).toBeGreaterThanOrEqual(10);
      if (late === 0) expect(stats[0]!.connectedMs).toBeLessThan(1000); // the others were already listening
    }
  });

  it('five parties (threshold 2: up to 3 PRSS keys per greeting) and --no-prss both verify', async () => {
    const base = await freeBase(5);
    const stats = await Promise.all(parties(5, base, { rounds: 3, bulkBytes: 10_000 }).map(runParty));
    // party 4 receives one greeting from each lower party: pid + 16 bytes per PRSS key (MPyC: C(5-c-2, 1) keys from party c)
    expect(stats[4]!.bytesReceived - 4 * (3 * 44 + 10_012 + 17)).toBe([0, 1, 2, 3].reduce((a, c) => a + 2 + 16 * prssKeyCount(5, 2, c, 4), 0));
    expect(prssKeyCount(5, 2, 0, 4)).toBe(3);
    const base2 = await freeBase(3);
    const s2 = await Promise.all(parties(3, base2, { prss: false, rounds: 2, bulkBytes: 0 }).map(runParty));
    expect(s2[2]!.bytesReceived).toBe(2 * (2 * 44 + 17) + 2 * 2); // greetings are the bare pid
  });

  it('a connection closed in the middle of the run is reported', async () => {
    const base = await freeBase(3);
    let server: Server | undefined;
    // a proxy that forwards party 0 -> party 1 and then kills both sides after 100 bytes
    const port = await new Promise<number>((resolve) => {
      server = createServer((down) => {
        const up = connect({ host: '127.0.0.1', port: base + 1 });
        let n = 0;
        down.on('data', (d: Buffer) => { n += d.length; up.write(d); if (n > 100) { up.end(); down.end(); } });
        up.on('data', (d) => down.write(d));
        down.on('error', () => up.destroy());
        up.on('error', () => down.destroy());
      });
      server.listen({ host: '127.0.0.1', port: 0 }, () => resolve((server!.address() as { port: number }).port));
    });
    try {
      const opts = parties(3, base, { timeoutMs: 4000 });
      const r = await Promise.allSettled([runParty({ ...opts[0]!, ports: [base, port, base + 2] }), runParty(opts[1]!), runParty(opts[2]!)]);
      expect(r[1]!.status).toBe('rejected');
      expect(((r[1] as PromiseRejectedResult).reason as Error).message).toMatch(/party 0 closed the connection before shutdown|connection with party 0/);
    } finally { server?.close(); }
  });

  it('a party that never arrives gives a timeout naming what it waited for', async () => {
    const base = await freeBase(3);
    const opts = parties(3, base, { timeoutMs: 800 });
    const r = await Promise.allSettled([runParty(opts[0]!), runParty(opts[1]!)]);
    expect(r[0]!.status).toBe('rejected');
    expect(((r[0] as PromiseRejectedResult).reason as Error).message).toMatch(/timeout after 800 ms while connecting to party 2/);
    expect(((r[1] as PromiseRejectedResult).reason as Error).message).toMatch(/timeout after 800 ms while connecting to party 2/);
  });

  it('rejects bad options', () => {
    expect(() => runParty({ m: 3, pid: 3 })).toThrow(/pid must be/);
    expect(() => runParty({ m: 2, pid: 0, threshold: 1 })).toThrow(/threshold 1 too large/);
    expect(() => runParty({ m: 3, pid: 0, basePort: 65534 })).toThrow(/ports must be/);
  });
});
