// The admission of initiations before any DH, on a fake clock: exact copies, the load
// threshold, cookies bound to the source, per-source and global budgets.
import { describe, it, expect } from 'vitest';
import { generateKeyPair } from '../../src/noise/index.js';
import { CookieJar } from '../../src/session/cookie.js';
import { DEFAULT_INITIATION_LIMITS, InitiationGuard, type InitiationLimits } from '../../src/session/initiation-guard.js';
import { INITIATION_LEN, MAC_LEN, NOISE_MSG1_LEN, decodeSessionMessage, encodeInitiation, type Initiation } from '../../src/session/wire.js';

const responder = generateKeyPair();
const src = (s: string): Uint8Array => new TextEncoder().encode(s);
let serial = 0;

/** A well-formed initiation (the guard never reads the Noise part except its ephemeral). */
function initiation(jar?: CookieJar, now = 0): { raw: Uint8Array; msg: Initiation } {
  const noise = new Uint8Array(NOISE_MSG1_LEN);
  new DataView(noise.buffer).setUint32(0, ++serial); // a distinct ephemeral each
  const raw = encodeInitiation({ senderIndex: serial, noise, mac1: new Uint8Array(MAC_LEN).fill(serial & 0xff), mac2: new Uint8Array(MAC_LEN) });
  if (jar) {
    jar.sent(raw.subarray(INITIATION_LEN - 2 * MAC_LEN, INITIATION_LEN - MAC_LEN));
  }
  const d = decodeSessionMessage(raw);
  if (d.type !== 'initiation') throw new Error('bad test initiation');
  return { raw, msg: d.msg };
}

function withMac2(jar: CookieJar, i: { raw: Uint8Array }, now: number): void {
  i.raw.set(jar.mac2(i.raw.subarray(0, INITIATION_LEN - MAC_LEN), now), INITIATION_LEN - MAC_LEN);
}

const limits = (over: Partial<InitiationLimits>): InitiationLimits => ({ ...DEFAULT_INITIATION_LIMITS, ...over });

/** Pushes the guard under load at `now` with initiations from one (unproven) source. */
function overload(g: InitiationGuard, now: number): void {
  for (let i = 0; i <= g.limits.underLoadPerSecond; i++) { const x = initiation(); g.admit(x.raw, x.msg, src('flooder'), now); }
}

describe('InitiationGuard', () => {
  it('knows an exact copy of an initiation that authenticated, and only after it did', () => {
    const g = new InitiationGuard(responder.publicKey, 0);
    const i = initiation();
    expect(g.isCopy(i.msg)).toBe(false); // not authenticated yet: no verdict
    g.remember(i.msg);
    expect(g.isCopy(i.msg)).toBe(true);
    const other = initiation();
    expect(g.isCopy(other.msg)).toBe(false);
    const sameEphemeral = new Uint8Array(other.raw);
    sameEphemeral.set(i.raw.subarray(8, 40), 8); // a tampered copy: same ephemeral, other bytes
    const d = decodeSessionMessage(sameEphemeral);
    expect(d.type === 'initiation' && g.isCopy(d.msg)).toBe(true);
  });

  it('not under load: no mac2 needed and no per-source budget', () => {
    const g = new InitiationGuard(responder.publicKey, 0);
    for (let k = 0; k < DEFAULT_INITIATION_LIMITS.underLoadPerSecond; k++) {
      const i = initiation();
      expect(g.admit(i.raw, i.msg, src('one-source'), k)).toEqual({ admit: true });
    }
    expect(g.isUnderLoad(100)).toBe(false);
  });

  it('under load, an initiation without a valid mac2 gets a cookie reply; with the cookie of its source it is admitted', () => {
    const g = new InitiationGuard(responder.publicKey, 0);
    overload(g, 1000);
    expect(g.isUnderLoad(1000)).toBe(true);
    const jar = new CookieJar(responder.publicKey);
    const first = initiation(jar);
    const a = g.admit(first.raw, first.msg, src('alice:1'), 1000);
    expect(a).toMatchObject({ admit: false, reason: 'cookie_sent' });
    const d = decodeSessionMessage((a as { cookieReply: Uint8Array }).cookieReply);
    if (d.type !== 'cookie') throw new Error('not a cookie reply');
    expect(d.msg.receiverIndex).toBe(first.msg.senderIndex);
    expect(jar.consume(d.msg, 1001)).toBe(true);
    withMac2(jar, first, 1001); // the same initiation again, now with mac2
    expect(g.admit(first.raw, first.msg, src('alice:1'), 1002)).toEqual({ admit: true });
    // the cookie is bound to the source: from elsewhere the same mac2 is not enough
    const moved = initiation(jar);
    withMac2(jar, moved, 1003);
    expect(g.admit(moved.raw, moved.msg, src('alice:2'), 1003)).toMatchObject({ reason: 'cookie_sent' });
    // and a garbage mac2 is not either
    const garbage = initiation();
    garbage.raw.fill(7, INITIATION_LEN - MAC_LEN);
    expect(g.admit(garbage.raw, garbage.msg, src('alice:1'), 1003)).toMatchObject({ reason: 'cookie_sent' });
  });

  it('under load, each proven source has its own budget; spoofed copies of its source cannot spend it', () => {
    const g = new InitiationGuard(responder.publicKey, 0, limits({ perSource: { perSecond: 2, burst: 3 } }));
    const jar = new CookieJar(responder.publicKey);
    overload(g, 1000);
    const probe = initiation(jar);
    const r = g.admit(probe.raw, probe.msg, src('bob'), 1000) as { cookieReply: Uint8Array };
    const d = decodeSessionMessage(r.cookieReply);
    if (d.type !== 'cookie') throw new Error('no cookie');
    jar.consume(d.msg, 1000);
    // a spoofer sends as "bob" without the cookie: cookie replies, bob's budget untouched
    for (let k = 0; k < 100; k++) { overload(g, 1000); const x = initiation(); g.admit(x.raw, x.msg, src('bob'), 1000); }
    const verdicts: string[] = [];
    for (let k = 0; k < 5; k++) {
      const i = initiation(jar);
      withMac2(jar, i, 1000);
      const v = g.admit(i.raw, i.msg, src('bob'), 1000);
      verdicts.push(v.admit ? 'admit' : v.reason);
    }
    expect(verdicts).toEqual(['admit', 'admit', 'admit', 'source_rate_limited', 'source_rate_limited']);
    const later = initiation(jar);
    withMac2(jar, later, 1500);
    expect(g.admit(later.raw, later.msg, src('bob'), 1500)).toEqual({ admit: true }); // 2 per second refill
  });

  it('the load ends UNDER_LOAD_HOLD_MS after the rate was last exceeded', () => {
    const g = new InitiationGuard(responder.publicKey, 0);
    overload(g, 1000);
    expect(g.isUnderLoad(1000 + DEFAULT_INITIATION_LIMITS.underLoadHoldMs - 1)).toBe(true);
    expect(g.isUnderLoad(1000 + DEFAULT_INITIATION_LIMITS.underLoadHoldMs)).toBe(false);
    const i = initiation();
    expect(g.admit(i.raw, i.msg, src('x'), 5000)).toEqual({ admit: true });
  });

  it('the global budget bounds what reaches the DH stage from all sources together; without sources it is the only bound', () => {
    const g = new InitiationGuard(responder.publicKey, 0, limits({ global: { perSecond: 10, burst: 20 } }));
    let admitted = 0;
    for (let k = 0; k < 1000; k++) {
      const i = initiation();
      const v = g.admit(i.raw, i.msg, undefined, k); // 1000 per second for 1 s, no sources: no cookies
      if (v.admit) admitted++;
      else expect(v.reason).toBe('handshake_budget_exhausted');
    }
    expect(g.isUnderLoad(999)).toBe(true);
    expect(admitted).toBeGreaterThanOrEqual(20 + 9);
    expect(admitted).toBeLessThanOrEqual(20 + 11);
  });
});
