// Bounded send loops of the attacker: every flood stops at a deadline and after a packet
// budget, whichever comes first, and yields to the event loop between bursts.

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface Budget {
  /** performance.now() after which nothing more is sent */
  deadline: number;
  /** packets at most, in total */
  maxPackets: number;
}

/**
 * Calls `burst()` (which sends some packets and returns how many) until the budget is
 * spent, paced to `pps` packets per second on average. Returns the packets sent.
 */
export async function paced(budget: Budget, pps: number, burst: () => number | Promise<number>): Promise<number> {
  const t0 = performance.now();
  let sent = 0;
  while (performance.now() < budget.deadline && sent < budget.maxPackets) {
    sent += await burst();
    const ahead = (sent / pps) * 1000 - (performance.now() - t0);
    if (ahead > 1) await sleep(ahead);
    else await new Promise((r) => setImmediate(r));
  }
  return sent;
}

export function randomBytes(n: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(n));
}
