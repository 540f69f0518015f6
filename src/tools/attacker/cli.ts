#!/usr/bin/env node
// The attacker of the adversarial tests (test/adversarial), one process per attack so its
// load never shares an event loop with what it attacks or with the measuring test:
//
//   node dist/src/tools/attacker/cli.js 'SPEC-JSON'
//
// It prints {"ready":true} once the attack starts sending (after any setup: a handshake,
// registrations) and {"done":true,...counts} when it ends: at spec.seconds, after
// spec.maxPackets, or on SIGTERM, whichever comes first. Every target must be loopback
// (127.0.0.0/8); anything else is refused. Not part of the product's commands: it exists
// to test mpyc-agent and mpyc-relay against the attacks of docs/SECURITY.md.
import { PeerKey } from '../../common/peer-key.js';
import { readKeyFile } from '../../common/keys.js';
import { MaliciousParty } from './malicious-party.js';
import { descendingFragments, hugeStreamIds, streamOpens } from './party-attacks.js';
import { RawUdp, type Endpoint } from './raw-udp.js';
import { replayInitiation, spoofRelayControl, spoofSend, stunAmplify } from './spoof-attacks.js';
import { httpHold, registerFlood, registerStrangers, strangerFlood } from './stranger-attacks.js';
import { registerWithKnownSecrets } from './known-secrets.js';
import { sleep, type Budget } from './pace.js';

/**
 * What a malicious party needs: its key (a party of the session), its own address (the
 * same in every attack, as a real agent's port is: the victim's path to it stays valid),
 * its victim and the session's relay.
 */
interface PartySpec { keyFile: string; bind: Endpoint; victimKey: string; victim: Endpoint; victimIndex: number; relay: Endpoint; relayKey: string }

export type AttackSpec = { seconds: number; maxPackets: number } & (
  | ({ attack: 'huge-stream-ids'; streamIndices: number[]; bursts: number; intervalMs: number } & PartySpec)
  | ({ attack: 'reassembly'; top: number; fragments: number; passes: number } & PartySpec)
  | ({ attack: 'stream-opens'; count: number } & PartySpec)
  | ({ attack: 'replay-initiation'; pps: number } & PartySpec)
  | { attack: 'spoof-relay-control'; relay: Endpoint; victim: Endpoint; intervalMs: number }
  | { attack: 'spoof-send'; relay: Endpoint; asAgent: Endpoint; destKey: string; payloadBytes: number; pps: number }
  | { attack: 'stun-amplify'; relay: Endpoint; sources: number; pps: number }
  | { attack: 'register-flood'; relay: Endpoint; pps: number; perCookie: number }
  | { attack: 'stranger-flood'; relay: Endpoint; relayKey: string; victimKey: string; keys: number; payloadBytes: number; pps: number }
  | { attack: 'http-hold'; http: Endpoint; connections: number; sources: number; opensPerS: number }
  | { attack: 'known-secrets'; relay: Endpoint; relayKey: string; count: number }
);

const out = (o: object): void => { process.stdout.write(`${JSON.stringify(o)}\n`); };

function checkLoopback(spec: unknown): void {
  const walk = (v: unknown, path: string): void => {
    if (v && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      if (typeof o.address === 'string' && typeof o.port === 'number' && !/^127\./.test(o.address)) {
        throw new Error(`${path}: ${o.address} is not a loopback address; the attacker only targets 127.0.0.0/8`);
      }
      for (const [k, x] of Object.entries(o)) walk(x, `${path}.${k}`);
    }
  };
  walk(spec, 'spec');
}

async function openParty(s: PartySpec): Promise<MaliciousParty> {
  const party = await MaliciousParty.open({ keyPair: readKeyFile(s.keyFile), victimKey: PeerKey.fromText(s.victimKey), victim: s.victim, victimIndex: s.victimIndex, relay: s.relay, relayKey: s.relayKey, bind: s.bind });
  await party.connect();
  return party;
}

async function run(spec: AttackSpec, budget: Budget): Promise<Record<string, unknown>> {
  const ready = (): void => out({ ready: true });
  const untilDeadline = async (): Promise<void> => { while (performance.now() < budget.deadline) await sleep(20); };
  switch (spec.attack) {
    case 'huge-stream-ids':
    case 'reassembly':
    case 'stream-opens': {
      const party = await openParty(spec);
      ready();
      try {
        const sent = spec.attack === 'huge-stream-ids' ? await hugeStreamIds(party, spec)
          : spec.attack === 'reassembly' ? await descendingFragments(party, spec)
          : await streamOpens(party, spec);
        await untilDeadline(); // the victim's answers (CLOSE frames) arrive meanwhile
        return { ...sent, victim: party.feedback };
      } finally { party.close(); }
    }
    case 'replay-initiation': {
      const party = await openParty(spec);
      const initiation = party.capturedInitiation;
      party.close();
      if (!initiation) throw new Error('no initiation captured');
      const raw = RawUdp.open();
      ready();
      try {
        const r = await replayInitiation(raw, { initiation, victim: spec.victim, pps: spec.pps }, budget);
        return { ...r, helper: await raw.close() };
      } finally { raw.kill(); }
    }
    case 'spoof-relay-control':
    case 'spoof-send': {
      const raw = RawUdp.open();
      ready();
      try {
        const r = spec.attack === 'spoof-relay-control' ? await spoofRelayControl(raw, spec, budget)
          : await spoofSend(raw, { ...spec, destKey: PeerKey.fromText(spec.destKey).bytes }, budget);
        return { ...r, helper: await raw.close() };
      } finally { raw.kill(); }
    }
    case 'stun-amplify':
      ready();
      return stunAmplify(spec, budget);
    case 'register-flood':
      ready();
      return registerFlood(spec, budget);
    case 'stranger-flood': {
      const strangers = await registerStrangers({ relay: spec.relay, relayKey: spec.relayKey, count: spec.keys, timeoutMs: 5_000 });
      ready();
      try {
        const r = await strangerFlood(strangers, { ...spec, victimKey: PeerKey.fromText(spec.victimKey).bytes }, budget);
        return { ...r, registered: strangers.length };
      } finally { for (const s of strangers) { s.client.close(); s.sock.close(); } }
    }
    case 'http-hold':
      ready();
      return httpHold(spec, budget);
    case 'known-secrets':
      ready();
      return registerWithKnownSecrets(spec);
  }
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '{}') as AttackSpec;
  checkLoopback(spec);
  if (!(spec.seconds > 0 && spec.seconds <= 120)) throw new Error('seconds must be in (0, 120]');
  if (!(Number.isInteger(spec.maxPackets) && spec.maxPackets > 0)) throw new Error('maxPackets must be a positive integer');
  const budget: Budget = { deadline: performance.now() + spec.seconds * 1000, maxPackets: spec.maxPackets };
  // SIGTERM ends the attack early, with its counts
  process.on('SIGTERM', () => { budget.deadline = 0; });
  // a hard stop in any case: setup steps have their own timeouts, this bounds the rest
  setTimeout(() => { process.stderr.write('attacker: hard stop\n'); process.exit(3); }, spec.seconds * 1000 + 30_000).unref();
  const r = await run(spec, budget);
  out({ done: true, ...r });
}

main().then(() => process.exit(0), (err: unknown) => { process.stderr.write(`attacker: ${(err as Error).stack ?? String(err)}\n`); process.exit(1); });
