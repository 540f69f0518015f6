// One benchmark round of any system, with the stall policy of the peers: a round whose
// connection stalled is retried (at most MAX_STALL_RETRIES times) and counts its stalls.
import { roundHolesail, roundInProcess, StallError } from './peers.js';
import { roundUdxProxy } from './udx-proxy-round.js';
import { roundAgent, roundFloor, roundTcp, roundWebRtc, type Fixture, type RoundResult, type SystemId, type Workload } from './systems.js';

export const MAX_STALL_RETRIES = 2;

function runOnce(system: SystemId, w: Workload, f: Fixture): Promise<RoundResult> {
  if (system === 'tcp') return roundTcp(w, f.hosts);
  if (system === 'floor') return roundFloor(w, f.hosts);
  if (system === 'webrtc') return roundWebRtc({ ...w, mpcRounds: 0 }, f.hosts);
  if (system === 'holesail') return roundHolesail(w, f);
  if (system === 'udx-proxy') return roundUdxProxy(w, f);
  if (system === 'hyperdht' || system === 'udx') return roundInProcess(system, w, f);
  return roundAgent(system, w, f);
}

export async function runRound(system: SystemId, w: Workload, f: Fixture, log: (m: string) => void): Promise<RoundResult> {
  for (let stalls = 0; ; stalls++) {
    try {
      const r = await runOnce(system, w, f);
      if (stalls) r.stalls = stalls;
      return r;
    } catch (e) {
      if (!(e instanceof StallError) || stalls >= MAX_STALL_RETRIES) {
        if (e instanceof StallError) throw new Error(`stalled ${stalls + 1} times: ${e.message}`);
        throw e;
      }
      log(`  ${system}: connection stalled, retrying the round (${e.message.split('\n')[0]})`);
    }
  }
}
