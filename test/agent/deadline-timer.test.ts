// The agent's one timer: armed for the earliest deadline, re-armed after due work, coalesced
// reschedules, nothing armed when nothing is due, silent after stop().
import { describe, expect, it } from 'vitest';
import { DeadlineTimer } from '../../src/agent/deadline-timer.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('DeadlineTimer', () => {
  it('fires at each earliest deadline, lets work move deadlines, and stops', async () => {
    const t0 = performance.now();
    let deadlines = [t0 + 30, t0 + 60];
    const fired: number[] = [];
    let computations = 0;
    const timer = new DeadlineTimer(() => { computations++; return Math.min(Infinity, ...deadlines); }, (now) => {
      fired.push(now - t0);
      deadlines = deadlines.filter((d) => d > now);
    });
    for (let i = 0; i < 100; i++) timer.reschedule();
    await sleep(0);
    expect(computations).toBe(1); // 100 reschedules in one turn: one computation
    await sleep(150);
    expect(fired.length).toBe(2);
    expect(fired[0]!).toBeGreaterThanOrEqual(29);
    expect(fired[1]!).toBeGreaterThanOrEqual(59);
    // an earlier deadline appears while a later one is armed: it is honoured
    deadlines = [performance.now() + 500];
    timer.reschedule();
    await sleep(0);
    deadlines.push(performance.now() + 20);
    timer.reschedule();
    await sleep(80);
    expect(fired.length).toBe(3);
    timer.stop();
    deadlines = [performance.now() + 10];
    timer.reschedule();
    await sleep(600);
    expect(fired.length).toBe(3);
  });

  it('arms nothing while nothing is due', async () => {
    let fired = 0;
    const timer = new DeadlineTimer(() => Infinity, () => { fired++; });
    timer.reschedule();
    await sleep(50);
    expect(fired).toBe(0);
    timer.stop();
  });

  it('a timer that fires before its deadline (by the clock) runs nothing until the deadline', async () => {
    // the clock can be set back: the timer then fires while, by the clock, the deadline is ahead
    let behind = 0;
    const clock = (): number => performance.now() - behind;
    const deadline = clock() + 10;
    const dueAt: number[] = [];
    const timer = new DeadlineTimer(() => (dueAt.length ? Infinity : deadline), (now) => { dueAt.push(now); }, clock);
    timer.reschedule();
    await sleep(5);
    behind = 30;
    await sleep(20); // the timer fired while the clock said 20 ms to go: it re-armed for those
    expect(dueAt).toEqual([]);
    behind = 0;
    await sleep(20);
    expect(dueAt.length).toBe(1);
    expect(dueAt[0]!).toBeGreaterThanOrEqual(deadline);
    timer.stop();
  });
});
