// The targets of issue 16 (goals 2–7; DESIGN.md §5) judged from one run's summaries, each
// "met" / "NOT MET" with the numbers, or n/a when the run did not measure it.
import { CONDITION_LABEL, f, type ConditionId, type ConditionSummary, type RelayScale, type SystemSummary } from './report.js';
import type { SystemId } from './systems.js';

export interface Verdict { goal: string; target: string; met: boolean | null; measured: string }

/**
 * Agent cost relative to holesail's in the same run (CPU per 1000 MPC rounds, per 100 MB)
 * on the baseline of main before the speed work (docs/benchmarks.md, bench/baseline.json):
 * goal 7 asks to halve both. Normalising by holesail's cost in the same run cancels the
 * machine's speed and load; null until a baseline is recorded.
 */
export interface CostBaseline { commit: string; mpcVsHolesail: number; bulkVsHolesail: number }

const num = (x: number | undefined): x is number => x !== undefined && Number.isFinite(x);
const x2 = (a: number, b: number): string => `${(a / b).toFixed(2)}×`;

export function verdicts(cs: ConditionSummary[], relay: RelayScale | null, baseline: CostBaseline | null): Verdict[] {
  const get = (c: ConditionId, s: SystemId): SystemSummary | undefined => cs.find((x) => x.condition === c)?.systems.find((x) => x.system === s);
  const out: Verdict[] = [];
  /** one verdict: `ok` is evaluated only when every figure it needs was measured */
  const judge = (goal: string, target: string, need: Array<number | undefined>, ok: () => boolean, measured: () => string, missing = 'not measured in this run'): void => {
    if (need.every(num)) out.push({ goal, target, met: ok(), measured: measured() });
    else out.push({ goal, target, met: null, measured: missing });
  };

  // goal 2: latency, loopback ping p50
  const L = (s: SystemId): SystemSummary | undefined => get('loopback', s);
  const dir = L('direct'), hs = L('holesail'), floor = L('floor'), rel = L('relay-udp'), ws = L('relay-ws'), hd = L('hyperdht');
  judge('2', 'loopback ping p50: agent direct ≤ 0.8× holesail', [dir?.pingP50Us, hs?.pingP50Us], () => dir!.pingP50Us <= 0.8 * hs!.pingP50Us,
    () => `${x2(dir!.pingP50Us, hs!.pingP50Us)} (${f(dir!.pingP50Us)} vs ${f(hs!.pingP50Us)} µs)`);
  judge('2', 'loopback ping p50: agent direct ≤ 1.5× the floor', [dir?.pingP50Us, floor?.pingP50Us], () => dir!.pingP50Us <= 1.5 * floor!.pingP50Us,
    () => `${x2(dir!.pingP50Us, floor!.pingP50Us)} (${f(dir!.pingP50Us)} vs ${f(floor!.pingP50Us)} µs)`);
  judge('2', 'loopback ping p50: relay (UDP) adds ≤ 25 % over direct', [dir?.pingP50Us, rel?.pingP50Us], () => rel!.pingP50Us <= 1.25 * dir!.pingP50Us,
    () => `+${f((100 * (rel!.pingP50Us - dir!.pingP50Us)) / dir!.pingP50Us)} % (${f(rel!.pingP50Us)} vs ${f(dir!.pingP50Us)} µs${num(ws?.pingP50Us) ? `; WebSocket relay ${f(ws.pingP50Us)} µs` : ''})`);

  // goal 3: throughput, loopback bulk
  judge('3', 'loopback bulk: agent direct ≥ 1.2× holesail', [dir?.bulkMbit, hs?.bulkMbit], () => dir!.bulkMbit >= 1.2 * hs!.bulkMbit,
    () => `${x2(dir!.bulkMbit, hs!.bulkMbit)} (${f(dir!.bulkMbit)} vs ${f(hs!.bulkMbit)} Mbit/s)`);
  judge('3', 'loopback bulk: agent direct ≥ hyperdht', [dir?.bulkMbit, hd?.bulkMbit], () => dir!.bulkMbit >= hd!.bulkMbit,
    () => `${x2(dir!.bulkMbit, hd!.bulkMbit)} (${f(dir!.bulkMbit)} vs ${f(hd!.bulkMbit)} Mbit/s)`);
  judge('3', 'loopback bulk: relay (UDP) ≥ 80 % of direct', [dir?.bulkMbit, rel?.bulkMbit], () => rel!.bulkMbit >= 0.8 * dir!.bulkMbit,
    () => `${f((100 * rel!.bulkMbit) / dir!.bulkMbit)} % (${f(rel!.bulkMbit)} vs ${f(dir!.bulkMbit)} Mbit/s${num(ws?.bulkMbit) ? `; WebSocket ${f(ws.bulkMbit)}` : ''})`);
  const agentDrops = [dir, rel, ws].filter((s): s is SystemSummary => !!s && Number.isFinite(s.rcvbufErrorsMax));
  judge('3', 'loopback bulk: 0 UDP receive-buffer drops in any agent bulk round', [agentDrops.length ? 0 : undefined], () => agentDrops.every((s) => s.rcvbufErrorsMax === 0),
    () => agentDrops.map((s) => `${s.system} max ${f(s.rcvbufErrorsMax)} (median ${f(s.rcvbufErrors)})`).join(', ')
      + (num(hs?.rcvbufErrorsMax) ? `; holesail max ${f(hs.rcvbufErrorsMax)}` : ''));

  // goal 4: MPC rounds
  const W = (s: SystemId): SystemSummary | undefined => get('wan20', s);
  const wt = W('tcp'), wd = W('direct'), wh = W('holesail');
  const wan = 'not measured (the emulated WAN needs root)';
  judge('4', 'MPC, 20 ms RTT: agent direct ≤ 1.05× raw TCP wall time', [wt?.mpcMsPer1000, wd?.mpcMsPer1000], () => wd!.mpcMsPer1000 <= 1.05 * wt!.mpcMsPer1000,
    () => `${(wd!.mpcMsPer1000 / wt!.mpcMsPer1000).toFixed(3)}× (${f(wd!.mpcMsPer1000)} vs ${f(wt!.mpcMsPer1000)} ms / 1000 rounds)`, wan);
  judge('4', 'MPC, 20 ms RTT: agent direct below holesail', [wh?.mpcMsPer1000, wd?.mpcMsPer1000], () => wd!.mpcMsPer1000 < wh!.mpcMsPer1000,
    () => `${f(wd!.mpcMsPer1000)} vs ${f(wh!.mpcMsPer1000)} ms / 1000 rounds`, wan);
  const X = (s: SystemId): SystemSummary | undefined => get('wan20loss2', s);
  const lt = X('tcp'), ld = X('direct'), lh = X('holesail');
  judge('4', 'MPC, 20 ms RTT + 2 % loss: round p99 ≤ 0.5× raw TCP', [lt?.mpcRoundP99Ms, ld?.mpcRoundP99Ms], () => ld!.mpcRoundP99Ms <= 0.5 * lt!.mpcRoundP99Ms,
    () => `${x2(ld!.mpcRoundP99Ms, lt!.mpcRoundP99Ms)} (${f(ld!.mpcRoundP99Ms, 1)} vs ${f(lt!.mpcRoundP99Ms, 1)} ms)`, wan);
  judge('4', 'MPC, 20 ms RTT + 2 % loss: round p99 ≤ holesail', [lh?.mpcRoundP99Ms, ld?.mpcRoundP99Ms], () => ld!.mpcRoundP99Ms <= lh!.mpcRoundP99Ms,
    () => `${f(ld!.mpcRoundP99Ms, 1)} vs ${f(lh!.mpcRoundP99Ms, 1)} ms`, wan);
  judge('4', 'MPC, 20 ms RTT + 2 % loss: ping p99 ≤ 0.3× raw TCP', [lt?.pingP99Us, ld?.pingP99Us], () => ld!.pingP99Us <= 0.3 * lt!.pingP99Us,
    () => `${x2(ld!.pingP99Us, lt!.pingP99Us)} (${f(ld!.pingP99Us / 1000, 1)} vs ${f(lt!.pingP99Us / 1000, 1)} ms)`, wan);

  // goal 5: start-up, the first MPC round when all parties start together
  for (const c of ['loopback', 'wan20'] as const) {
    const rtt = c === 'loopback' ? 0 : 20;
    const t = get(c, 'tcp'), d = get(c, 'direct');
    judge('5', `first MPC round (${CONDITION_LABEL[c]}): agent direct ≤ raw TCP's + one RTT (${rtt} ms)`, [t?.mpcFirstRoundMs, d?.mpcFirstRoundMs],
      () => d!.mpcFirstRoundMs <= t!.mpcFirstRoundMs + rtt, () => `${f(d!.mpcFirstRoundMs, 1)} vs ${f(t!.mpcFirstRoundMs, 1)} + ${rtt} ms`, c === 'loopback' ? undefined : wan);
  }

  // goal 6: relay forwarding against the bare forwarder, and every core
  judge('6', 'relay: ≥ 0.8× the bare forwarder\'s packets/s (same run)', [relay?.pps, relay?.floorPps], () => relay!.pps! >= 0.8 * relay!.floorPps!,
    () => `${x2(relay!.pps!, relay!.floorPps!)} (${f(relay!.pps! / 1000, 1)}k vs ${f(relay!.floorPps! / 1000, 1)}k packets/s)`,
    relay?.error ?? 'not measured (npm run bench without --no-relay, or npm run bench:relay)');
  if (relay?.workers === undefined) out.push({ goal: '6', target: 'relay: scaling over the host\'s cores (1, 2 workers)', met: null, measured: relay?.error ?? 'not measured' });
  else if (typeof relay.workers === 'string') out.push({ goal: '6', target: 'relay: scaling over the host\'s cores (1, 2 workers)', met: false, measured: relay.workers });
  else {
    const one = relay.workers.find((w) => w.workers === 1)?.pps, two = relay.workers.find((w) => w.workers === 2)?.pps;
    judge('6', 'relay: scaling over the host\'s cores (2 workers > 1 worker)', [one, two], () => two! > one!,
      () => relay.workers && typeof relay.workers !== 'string' ? relay.workers.map((w) => `${w.workers}: ${f(w.pps / 1000, 1)}k`).join(', ') + ' packets/s' : '');
  }

  // goal 7: cost, in the table; halve both (against the baseline, relative to holesail)
  judge('7', 'cost: agent CPU per 1000 MPC rounds (loopback) halved', [dir?.cpuSPer1000Mpc, hs?.cpuSPer1000Mpc, baseline?.mpcVsHolesail],
    () => dir!.cpuSPer1000Mpc / hs!.cpuSPer1000Mpc <= 0.5 * baseline!.mpcVsHolesail,
    () => `${f(dir!.cpuSPer1000Mpc, 2)} s (${x2(dir!.cpuSPer1000Mpc, hs!.cpuSPer1000Mpc)} holesail's; baseline ${baseline!.commit}: ${baseline!.mpcVsHolesail.toFixed(2)}×)`,
    baseline ? 'not measured in this run' : `${num(dir?.cpuSPer1000Mpc) ? `${f(dir.cpuSPer1000Mpc, 2)} s` : '–'} (no baseline recorded in bench/baseline.json)`);
  judge('7', 'cost: agent CPU per 100 MB bulk (loopback) halved', [dir?.cpuSPer100MB, hs?.cpuSPer100MB, baseline?.bulkVsHolesail],
    () => dir!.cpuSPer100MB / hs!.cpuSPer100MB <= 0.5 * baseline!.bulkVsHolesail,
    () => `${f(dir!.cpuSPer100MB, 2)} s (${x2(dir!.cpuSPer100MB, hs!.cpuSPer100MB)} holesail's; baseline ${baseline!.commit}: ${baseline!.bulkVsHolesail.toFixed(2)}×)`,
    baseline ? 'not measured in this run' : `${num(dir?.cpuSPer100MB) ? `${f(dir.cpuSPer100MB, 2)} s` : '–'} (no baseline recorded in bench/baseline.json)`);

  // DESIGN.md §5, start-up: first byte after up, direct within 2 s
  for (const c of ['loopback', 'wan20'] as const) {
    const rtt = c === 'loopback' ? 0 : 20;
    const r = get(c, 'relay-udp'), d = get(c, 'direct');
    // "one relay round trip plus the handshake": 3 path RTTs (registration, handshake, data) + 25 ms of processing
    judge('§5', `first byte after up (${CONDITION_LABEL[c]}): ≤ relay RTT + handshake (${3 * rtt + 25} ms after the agents are ready)`, [r?.ttfbFromReadyMs, d?.ttfbFromReadyMs],
      () => Math.max(r!.ttfbFromReadyMs, d!.ttfbFromReadyMs) <= 3 * rtt + 25,
      () => `direct mode ${f(d!.ttfbFromReadyMs, 1)} ms, relay-only ${f(r!.ttfbFromReadyMs, 1)} ms after ready (${f(d!.ttfbMs)} / ${f(r!.ttfbMs)} ms after spawn)`);
  }
  const wdir = W('direct') ?? dir;
  judge('§5', 'direct path within 2 s', [wdir?.directMs], () => wdir!.directMs <= 2000,
    () => `${f(wdir!.directMs)} ms after spawn (${f(wdir!.directFromReadyMs)} after ready), ${wdir === dir ? 'loopback' : '20 ms RTT, no NAT (the EIM↔EIM NAT case is the lab\'s)'}`);
  judge('§5', 'relay: 10k registered agents in ≤ 100 MB RSS', [relay?.rssMbWith10k], () => relay!.rssMbWith10k! <= 100,
    () => `${f(relay!.rssMbWith10k!, 1)} MB with ${relay!.agents} agents`, 'not measured (npm run bench -- --relay-scale)');
  return out;
}

export function verdictText(vs: Verdict[]): string {
  return vs.map((v) => `- ${v.met === null ? '[n/a]    ' : v.met ? '[met]    ' : '[NOT MET]'} goal ${v.goal}: ${v.target}: ${v.measured}`).join('\n');
}
