// Attacks of a malicious party (issue #12 rows 1-3) on its victim's stream transport.
// Each is bounded: a fixed number of frames, packets and bursts.
import { frameSize, type Frame } from '../../transport/wire.js';
import type { MaliciousParty } from './malicious-party.js';

/** a transport packet's frames fill at most this many bytes (the victim's packets are ≤ 1200) */
const PACKET_FRAME_BYTES = 1100;
/**
 * Packets per second of the malicious party: slow enough that the victim's socket buffer
 * (~200 kB by default) never overflows, so every hostile packet is actually processed.
 */
const PARTY_PPS = 2_000;
const PACKETS_PER_BURST = 16;

export interface PartyAttackResult { packets: number; frames: number }

/** Packs frames into packets of ≤ PACKET_FRAME_BYTES of frames, in order. */
function pack(frames: Frame[]): Frame[][] {
  const packets: Frame[][] = [];
  let batch: Frame[] = [];
  let size = 0;
  for (const f of frames) {
    const n = frameSize(f);
    if (size + n > PACKET_FRAME_BYTES && batch.length > 0) { packets.push(batch); batch = []; size = 0; }
    batch.push(f);
    size += n;
  }
  if (batch.length > 0) packets.push(batch);
  return packets;
}

/**
 * Sends the frames, packed, at PARTY_PPS; `passes` times over with the same packet numbers
 * (what a sender retransmitting unacknowledged packets does): a packet the victim lost
 * (its socket buffer overflowed while it was busy) arrives on a later pass, one it already
 * has is a cheap duplicate.
 */
async function sendAll(party: MaliciousParty, frames: Frame[], passes = 1): Promise<PartyAttackResult> {
  const packets = pack(frames);
  const firstPn = party.nextPn;
  const t0 = performance.now();
  let sent = 0;
  for (let p = 0; p < passes; p++) {
    party.nextPn = firstPn;
    for (const batch of packets) {
      party.sendFrames(batch);
      if (++sent % PACKETS_PER_BURST === 0) {
        await party.drain();
        const ahead = (sent / PARTY_PPS) * 1000 - (performance.now() - t0);
        if (ahead > 0) await new Promise((r) => setTimeout(r, ahead));
      }
    }
  }
  await party.drain();
  return { packets: sent, frames: frames.length };
}

/**
 * Row 1: STREAM frames whose ids lie far beyond any credit (a receiver that tracks the
 * skipped ids walks them all). `bursts` times, each from a fresh transport epoch.
 */
export async function hugeStreamIds(party: MaliciousParty, o: { streamIndices: number[]; bursts: number; intervalMs: number }): Promise<PartyAttackResult> {
  const total: PartyAttackResult = { packets: 0, frames: 0 };
  for (let b = 0; b < o.bursts; b++) {
    if (b > 0) await new Promise((r) => setTimeout(r, o.intervalMs));
    party.newEpoch();
    const frames: Frame[] = o.streamIndices.map((k) => ({ type: 'stream', id: party.streamId(k), offset: 0, fin: false, target: party.target, data: new Uint8Array(1) }));
    const r = await sendAll(party, frames);
    total.packets += r.packets;
    total.frames += r.frames;
  }
  return total;
}

/**
 * Row 2: one stream opened at offset top-1, then 1-byte fragments at every second lower
 * offset (a gap between any two, so none coalesce), descending: the worst order for a
 * sorted-array reassembly buffer. Never offset 0: nothing is ever in order, all of it
 * waits in reassembly.
 */
export async function descendingFragments(party: MaliciousParty, o: { top: number; fragments: number; passes: number }): Promise<PartyAttackResult> {
  party.newEpoch();
  const id = party.streamId(0);
  const byte = new Uint8Array(1);
  const frames: Frame[] = [{ type: 'stream', id, offset: o.top - 1, fin: false, target: party.target, data: byte }];
  for (let i = 1; i < o.fragments && o.top - 1 - 2 * i > 0; i++) frames.push({ type: 'stream', id, offset: o.top - 1 - 2 * i, fin: false, data: byte });
  return sendAll(party, frames, o.passes);
}

/** Row 3: `count` streams opened at once (beyond the victim's stream limit), one byte each. */
export async function streamOpens(party: MaliciousParty, o: { count: number }): Promise<PartyAttackResult> {
  party.newEpoch();
  const frames: Frame[] = [];
  for (let k = 0; k < o.count; k++) frames.push({ type: 'stream', id: party.streamId(k), offset: 0, fin: false, target: party.target, data: new Uint8Array(1) });
  return sendAll(party, frames);
}
