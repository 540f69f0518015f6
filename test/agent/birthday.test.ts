// Birthday probing (birthday.ts) on a fake clock: when an attempt starts and when never,
// the budget (packets, rate, time) of a whole attempt that finds nothing, the answers it
// recognises, retries, and — against a model of the two NATs — how often it finds a path.
import { describe, expect, it } from 'vitest';
import {
  BIRTHDAY_AFTER_MS, BirthdayProbing, birthdayRole, BUDGET, EASY_BATCH, EASY_LINGER_MS, EASY_PROBES, EASY_TICK_MS, HARD_BATCH, HARD_ROUNDS,
  HARD_SOCKETS, HARD_TICK_MS, HARD_WINDOW_MS, MAX_FAILED_ATTEMPTS, PORT_MAX, PORT_MIN, PORT_RANGE, RETRY_AFTER_MS, successProbability,
  type BirthdayAction, type BirthdayView,
} from '../../src/agent/birthday.js';
import { PeerPaths } from '../../src/agent/path.js';
import { candidateKey } from '../../src/agent/candidates.js';

const EASY_PUBLIC = { address: '198.18.1.2', port: 40000 };
const HARD_PUBLIC = { address: '198.18.2.2', port: 51000 };

/** the view of the easy side (peer hard) or of the hard side (peer easy) */
function view(role: 'easy' | 'hard', o: Partial<BirthdayView> = {}): BirthdayView {
  return {
    established: true, direct: false,
    ourMapping: role === 'easy' ? 'independent' : 'dependent',
    peerMapping: role === 'easy' ? 'dependent' : 'independent',
    peerPublic: role === 'easy' ? HARD_PUBLIC : EASY_PUBLIC,
    hardSideMapped: false,
    ...o,
  };
}

/** a seeded uniform random source */
function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0; s ^= s >>> 13; return (s >>> 0) / 2 ** 32; };
}

interface Sent { at: number; a: BirthdayAction }

/** Runs `b` at each of its deadlines from `from` to `to`, answering 'open' with socket ids 1000+; returns every action. */
function run(b: BirthdayProbing, v: (now: number) => BirthdayView, from: number, to: number): Sent[] {
  const out: Sent[] = [];
  let now = from;
  const take = (acts: BirthdayAction[]): void => {
    for (const a of acts) {
      out.push({ at: now, a });
      if (a.kind === 'open') take(b.opened(Array.from({ length: a.count }, (_, i) => 1000 + i), now));
    }
  };
  take(b.poll(now, v(now)));
  for (let guard = 0; guard < 100_000; guard++) {
    const d = b.nextDeadline();
    if (d > to) return out;
    now = Math.max(now, d);
    take(b.poll(now, v(now)));
  }
  throw new Error('deadline did not advance');
}

const probes = (s: Sent[]) => s.filter((x): x is Sent & { a: { kind: 'probe' } } => x.a.kind === 'probe');

/** the most probes in any window of `ms` */
function peakIn(s: Sent[], ms: number): number {
  const t = probes(s).map((x) => x.at);
  let best = 0;
  for (let i = 0, j = 0; i < t.length; i++) { while (t[i]! - t[j]! >= ms) j++; best = Math.max(best, i - j + 1); }
  return best;
}

describe('the birthday arithmetic', () => {
  it('256 open ports, 2048 distinct probes of 64512: 99.97 %; nothing probed or nothing open: 0; more is better', () => {
    expect(PORT_RANGE).toBe(64512);
    expect(successProbability()).toBeGreaterThan(0.9996);
    expect(successProbability()).toBeLessThan(0.9998);
    // the closed form's approximation agrees
    expect(successProbability()).toBeCloseTo(1 - (1 - HARD_SOCKETS / PORT_RANGE) ** EASY_PROBES, 4);
    expect(successProbability(256, 0)).toBe(0);
    expect(successProbability(0, 2048)).toBe(0);
    expect(successProbability(256, 1024)).toBeLessThan(successProbability(256, 2048));
    expect(successProbability(10, 10, 10)).toBe(1);
  });
});

describe('when birthday probing starts', () => {
  it('roles: only endpoint-independent ↔ endpoint-dependent; never both hard, never unknown', () => {
    expect(birthdayRole({ ourMapping: 'independent', peerMapping: 'dependent' })).toBe('easy');
    expect(birthdayRole({ ourMapping: 'dependent', peerMapping: 'independent' })).toBe('hard');
    expect(birthdayRole({ ourMapping: 'dependent', peerMapping: 'dependent' })).toBeUndefined();
    expect(birthdayRole({ ourMapping: 'independent', peerMapping: 'independent' })).toBeUndefined();
    expect(birthdayRole({ ourMapping: 'unknown', peerMapping: 'dependent' })).toBeUndefined();
    expect(birthdayRole({ ourMapping: 'dependent', peerMapping: 'unknown' })).toBeUndefined();
  });

  it(`only after the pair has stayed on the relay ${BIRTHDAY_AFTER_MS} ms with both kinds known`, () => {
    const b = new BirthdayProbing(seeded(1));
    expect(b.poll(0, view('easy'))).toEqual([]);
    expect(b.poll(BIRTHDAY_AFTER_MS - 1, view('easy'))).toEqual([]);
    expect(b.nextDeadline()).toBe(BIRTHDAY_AFTER_MS);
    expect(b.poll(BIRTHDAY_AFTER_MS, view('easy')).length).toBe(EASY_BATCH);
    // a direct path meanwhile restarts the wait
    const c = new BirthdayProbing(seeded(1));
    c.poll(0, view('easy'));
    c.poll(500, view('easy', { direct: true }));
    expect(c.poll(BIRTHDAY_AFTER_MS, view('easy'))).toEqual([]);
  });

  it('never: both hard, not established, already direct, the hard side has a port mapping, the peer\'s public address unknown', () => {
    const cases: BirthdayView[] = [
      view('easy', { peerMapping: 'independent' }),
      { ...view('hard'), peerMapping: 'dependent' },
      view('easy', { established: false }),
      view('easy', { direct: true }),
      view('easy', { hardSideMapped: true }),
      view('hard', { hardSideMapped: true }),
      view('easy', { peerPublic: undefined }),
    ];
    for (const v of cases) {
      const b = new BirthdayProbing(seeded(2));
      expect(run(b, () => v, 0, 60_000), JSON.stringify(v)).toEqual([]);
      expect(b.totals.attempts).toBe(0);
    }
  });
});

describe('the budget of one attempt that finds nothing', () => {
  it(`easy side: ${EASY_PROBES} distinct ports of the peer's public address, in range, ≤ ${EASY_BATCH} per ${EASY_TICK_MS} ms, done after ~4.1 s + linger`, () => {
    const b = new BirthdayProbing(seeded(3));
    const sent = run(b, () => view('easy'), 0, 20_000);
    const p = probes(sent);
    expect(p).toHaveLength(BUDGET.easy);
    expect(sent.every((x) => x.a.kind === 'probe')).toBe(true); // no sockets on the easy side
    const ports = p.map((x) => x.a.to.port);
    expect(new Set(ports).size).toBe(EASY_PROBES);
    expect(ports.every((q) => q >= PORT_MIN && q <= PORT_MAX)).toBe(true);
    expect(p.every((x) => x.a.to.address === HARD_PUBLIC.address && x.a.to.via === undefined)).toBe(true);
    expect(peakIn(sent, EASY_TICK_MS)).toBeLessThanOrEqual(EASY_BATCH);
    expect(peakIn(sent, 1000)).toBeLessThanOrEqual(500 + EASY_BATCH);
    const span = p.at(-1)!.at - p[0]!.at;
    expect(span).toBeGreaterThanOrEqual(((EASY_PROBES / EASY_BATCH) - 1) * EASY_TICK_MS);
    expect(b.running).toBe(false);
    expect(b.totals).toEqual({ attempts: 1, probes: EASY_PROBES, found: 0 });
    const ended = b.takeEvents().at(-1);
    expect(ended).toMatchObject({ kind: 'ended', role: 'easy', probes: EASY_PROBES, found: false });
    expect((ended as { ms: number }).ms).toBeLessThanOrEqual(span + EASY_LINGER_MS + EASY_TICK_MS);
  });

  it(`hard side: ${HARD_SOCKETS} sockets, one probe each per round for ${HARD_ROUNDS} rounds to the easy side's address:port, ≤ ${HARD_BATCH} per ${HARD_TICK_MS} ms, all closed by ${HARD_WINDOW_MS} ms`, () => {
    const b = new BirthdayProbing(seeded(4));
    const sent = run(b, () => view('hard'), 0, 20_000);
    const opens = sent.filter((x) => x.a.kind === 'open');
    expect(opens.map((x) => x.a)).toEqual([{ kind: 'open', count: HARD_SOCKETS }]);
    const p = probes(sent);
    expect(p).toHaveLength(BUDGET.hard);
    const perSocket = new Map<number, number>();
    for (const x of p) {
      expect(x.a.to).toMatchObject(EASY_PUBLIC);
      perSocket.set(x.a.to.via!, (perSocket.get(x.a.to.via!) ?? 0) + 1);
    }
    expect(perSocket.size).toBe(HARD_SOCKETS);
    expect([...perSocket.values()].every((n) => n === HARD_ROUNDS)).toBe(true);
    expect(peakIn(sent, HARD_TICK_MS)).toBeLessThanOrEqual(HARD_BATCH);
    expect(peakIn(sent, 1000)).toBeLessThanOrEqual(1000 + HARD_BATCH);
    const closes = sent.filter((x) => x.a.kind === 'close');
    expect(closes).toHaveLength(1);
    expect(closes[0]!.at - opens[0]!.at).toBe(HARD_WINDOW_MS);
    expect((closes[0]!.a as { ids: number[] }).ids.sort((x, y) => x - y)).toEqual([...perSocket.keys()].sort((x, y) => x - y));
  });

  it(`a failed attempt is retried after ${RETRY_AFTER_MS / 1000} s, at most ${MAX_FAILED_ATTEMPTS} times in all`, () => {
    const b = new BirthdayProbing(seeded(5));
    const sent = run(b, () => view('easy'), 0, 10 * 60_000);
    expect(b.totals.attempts).toBe(MAX_FAILED_ATTEMPTS);
    expect(probes(sent)).toHaveLength(MAX_FAILED_ATTEMPTS * BUDGET.easy);
    const starts = b.takeEvents().filter((e) => e.kind === 'started');
    expect(starts).toHaveLength(MAX_FAILED_ATTEMPTS);
    const t = probes(sent).map((x) => x.at);
    const gaps = t.slice(1).map((x, i) => x - t[i]!).filter((g) => g > EASY_TICK_MS);
    expect(gaps).toHaveLength(MAX_FAILED_ATTEMPTS - 1);
    for (const g of gaps) expect(g).toBeGreaterThanOrEqual(EASY_LINGER_MS + RETRY_AFTER_MS);
    expect(b.nextDeadline()).toBe(Infinity);
  });
});

describe('answers and the path found', () => {
  it('easy side: an ack from the probed port of the peer\'s address is a birthday candidate; from elsewhere it is not', () => {
    const b = new BirthdayProbing(seeded(6));
    expect(b.poll(0, view('easy'))).toEqual([]);
    const p = b.poll(BIRTHDAY_AFTER_MS, view('easy')) as { kind: 'probe'; id: Uint8Array; to: { address: string; port: number } }[];
    const hit = p[3]!;
    expect(b.matchAck(hit.id, { address: HARD_PUBLIC.address, port: hit.to.port + 1 })).toBeUndefined();
    expect(b.matchAck(hit.id, { address: '198.18.9.9', port: hit.to.port })).toBeUndefined();
    expect(b.matchAck(hit.id, { ...hit.to, via: 7 })).toBeUndefined();
    const forged = new Uint8Array(hit.id); forged[0]! ^= 1;
    expect(b.matchAck(forged, hit.to)).toBeUndefined();
    expect(b.matchAck(hit.id, hit.to)).toEqual({ ...hit.to, source: 'birthday' });
    // a packet from a port it probed is explained by the probing; others are not
    expect(b.explains(hit.to)).toBe(true);
    expect(b.explains({ address: HARD_PUBLIC.address, port: PORT_MIN - 1 })).toBe(false);
    // the path comes up: the attempt ends as found, no more probes
    expect(b.poll(BIRTHDAY_AFTER_MS + 10, view('easy', { direct: true, activeBirthday: true }))).toEqual([]);
    expect(b.totals.found).toBe(1);
    expect(b.takeEvents().at(-1)).toMatchObject({ kind: 'ended', found: true, why: 'a direct path is up' });
  });

  it('hard side: an ack on one of its sockets is a candidate on that socket; when the path uses it, every other socket is closed and it is kept', () => {
    const b = new BirthdayProbing(seeded(7));
    expect(b.poll(0, view('hard'))).toEqual([]);
    expect(b.poll(BIRTHDAY_AFTER_MS, view('hard'))).toEqual([{ kind: 'open', count: HARD_SOCKETS }]);
    // nothing is sent before the sockets are open
    expect(b.poll(BIRTHDAY_AFTER_MS + 1, view('hard'))).toEqual([]);
    expect(b.nextDeadline()).toBe(Infinity);
    const ids = Array.from({ length: HARD_SOCKETS }, (_, i) => 500 + i);
    b.opened(ids, BIRTHDAY_AFTER_MS + 5);
    const p = b.poll(BIRTHDAY_AFTER_MS + 5, view('hard')) as { kind: 'probe'; id: Uint8Array; to: { address: string; port: number; via: number } }[];
    const mine = p[2]!;
    expect(mine.to.via).toBe(502);
    expect(b.matchAck(mine.id, { ...EASY_PUBLIC, via: 503 })).toBeUndefined();
    expect(b.matchAck(mine.id, { ...EASY_PUBLIC })).toBeUndefined();
    expect(b.matchAck(mine.id, { ...EASY_PUBLIC, via: 502 })).toEqual({ ...EASY_PUBLIC, via: 502, source: 'birthday' });
    expect(b.explains({ ...EASY_PUBLIC, via: 600 })).toBe(true);
    expect(b.explains({ ...EASY_PUBLIC, via: 9999 })).toBe(false);
    const end = b.poll(BIRTHDAY_AFTER_MS + 300, view('hard', { direct: true, activeVia: 502 }));
    expect(end).toHaveLength(1);
    const closed = (end[0] as { kind: 'close'; ids: number[] }).ids;
    expect(closed).toHaveLength(HARD_SOCKETS - 1);
    expect(closed).not.toContain(502);
    expect(b.explains({ ...EASY_PUBLIC, via: 502 })).toBe(true);
    expect(b.explains({ ...EASY_PUBLIC, via: 503 })).toBe(false);
    // sockets that finish binding after the attempt ended are closed at once
    expect(b.opened([9001, 9002], BIRTHDAY_AFTER_MS + 400)).toEqual([{ kind: 'close', ids: [9001, 9002] }]);
  });
});

describe('against a model of the two NATs', () => {
  /**
   * The hard NAT gives each of its sockets a random free port of the range (open to the easy
   * side only); the easy side's probes hit when they name one of them. Both attempts run on
   * one clock from the same start, as the lab does.
   */
  function trial(seed: number): { found: boolean; probesUntilHit: number } {
    const rnd = seeded(seed);
    const nat = new Set<number>();
    while (nat.size < HARD_SOCKETS) nat.add(PORT_MIN + Math.floor(rnd() * PORT_RANGE));
    const easy = new BirthdayProbing(seeded(seed * 7 + 1));
    const sent = probes(run(easy, () => view('easy'), 0, 10_000));
    const k = sent.findIndex((x) => nat.has(x.a.to.port));
    return { found: k >= 0, probesUntilHit: k + 1 };
  }

  it('finds a path in ≥ 99 % of 400 trials, typically within a few hundred probes', () => {
    const results = Array.from({ length: 400 }, (_, i) => trial(i + 1));
    const found = results.filter((r) => r.found);
    expect(found.length / results.length).toBeGreaterThanOrEqual(0.99);
    const sorted = found.map((r) => r.probesUntilHit).sort((a, b) => a - b);
    const med = sorted[Math.floor(sorted.length / 2)]!;
    // geometric with p = 256/64512: median ≈ 175
    expect(med).toBeGreaterThan(60);
    expect(med).toBeLessThan(400);
  });
});

describe('a path through a birthday socket (path.ts)', () => {
  it('a confirmed birthday candidate takes over from the relay with its socket; packets on that socket keep it alive; closing the socket drops it', () => {
    const p = new PeerPaths(false);
    p.confirmFound({ ...EASY_PUBLIC, via: 9, source: 'birthday' }, 100);
    expect(p.active).toMatchObject({ kind: 'direct', ...EASY_PUBLIC, via: 9 });
    expect(p.activeInfo()).toMatchObject({ source: 'birthday' });
    expect(p.takeChanges().map((c) => c.reason)).toEqual(['birthday probe confirmed']);
    // the same address from the main socket is another candidate, not the active path
    expect(p.onDirectPacket({ ...EASY_PUBLIC }, 200)).toBe(true);
    expect(p.candidateCount).toBe(2);
    // heartbeats go out on the birthday socket
    const hb = p.poll(1200).filter((a) => a.to.via === 9);
    expect(hb).toHaveLength(1);
    expect(candidateKey(hb[0]!.to)).toBe(`${EASY_PUBLIC.address}:${EASY_PUBLIC.port} via 9`);
    p.forgetVia(9, 1300);
    expect(p.active).toEqual({ kind: 'relay' });
    expect(p.takeChanges().map((c) => c.reason)).toEqual(['its birthday socket was closed']);
    expect(p.candidateCount).toBe(1);
  });

  it('an address first seen as peer-reflexive and then confirmed by a birthday ack is a birthday path', () => {
    const p = new PeerPaths(false);
    p.onDirectPacket({ ...HARD_PUBLIC }, 0);
    p.confirmFound({ ...HARD_PUBLIC, source: 'birthday' }, 10);
    expect(p.activeInfo()).toMatchObject({ source: 'birthday' });
  });
});
