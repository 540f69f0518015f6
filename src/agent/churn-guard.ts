// How soon a peer's transport packets are listened to again after its connection closed.
// A connection that the peer's packets close (a protocol error, a CLOSE frame) is replaced
// at once by a fresh one (a new epoch), and the peer may open streams on that one too, each
// a local connect to MPyC's listener. Unbounded, a peer could make the agent create and
// discard connections as fast as it sends packets (docs/SECURITY.md, connection churn).
// So the first close after a calm period costs nothing, and every further close soon after
// makes the new connection ignore the peer's packets for a hold that doubles from
// CHURN_FIRST_HOLD_MS up to CHURN_MAX_HOLD_MS: at most ~9 connections in the first 10 s,
// then one per 10 s. A legitimate peer never causes protocol errors; its agent stopping
// (one CLOSE) or restarting (a new epoch, no close at all) is not held.

/** the hold after the second close in a row */
export const CHURN_FIRST_HOLD_MS = 50;
/** the longest hold: one connection per 10 s at most under a steady attack */
export const CHURN_MAX_HOLD_MS = 10_000;
/** a connection listened to for this long without closing ends the series */
export const CHURN_CALM_MS = 10_000;
/** closes in a series beyond which the hold no longer grows (keeps the exponent small) */
const MAX_COUNTED_CLOSES = 16;

export class ChurnGuard {
  private closesInSeries = 0;
  private listeningFrom: number;

  constructor(now: number) {
    this.listeningFrom = now;
  }

  /** The connection closed at `now`; returns the time from which its successor listens. */
  closed(now: number): number {
    if (now - this.listeningFrom >= CHURN_CALM_MS) this.closesInSeries = 0;
    const hold = this.closesInSeries === 0 ? 0 : Math.min(CHURN_MAX_HOLD_MS, CHURN_FIRST_HOLD_MS * 2 ** (this.closesInSeries - 1));
    this.closesInSeries = Math.min(this.closesInSeries + 1, MAX_COUNTED_CLOSES);
    this.listeningFrom = now + hold;
    return this.listeningFrom;
  }

  /** Whether the peer's packets are taken at `now`. */
  listening(now: number): boolean {
    return now >= this.listeningFrom;
  }
}
