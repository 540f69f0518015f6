// Issue #12 row 11, relay side: handshake secrets left in memory. The attacker registers with the relay
// 20 times with handshakes whose Diffie-Hellman results it knows (its own ephemeral key is
// fixed); afterwards the relay process's whole readable memory is searched for them, as a
// local attacker reading /proc/<pid>/mem, a core dump or swap would. A relay that zeroes
// every handshake state on completion or failure holds none of them.
import { beforeAll, describe, expect, it } from 'vitest';
import { runAttack } from './attack-run.js';
import { findInMemory } from './memory.js';
import { requireBuiltClis, withWorld } from './world.js';
import { PeerKey } from '../../src/common/peer-key.js';

const notRoot = process.getuid?.() !== 0;
if (notRoot) process.stdout.write('*** ADVERSARIAL MEMORY TEST SKIPPED: not root (reading another process\'s memory) ***\n');

beforeAll(requireBuiltClis);

describe.skipIf(notRoot)('handshake secrets in the relay\'s memory', () => {
  it('row 11: none of the DH results of 20 completed registrations remain in the relay process', async () => {
    const r = await withWorld({}, (w) => runAttack(w, 11, { attack: 'known-secrets', relay: w.relay.udp, relayKey: w.relay.key, count: 20, seconds: 3, maxPackets: 100 }, undefined,
      async (attacker) => {
        const secrets = (attacker.secrets as string[]).map((h) => Buffer.from(h, 'hex'));
        // the scanner must be able to find what is there: the relay's public key always is
        const hits = findInMemory(w.relay.proc.child.pid!, [Buffer.from(PeerKey.fromText(w.relay.key).bytes), ...secrets]);
        return { relayKeyFound: hits.has(0) ? 1 : 0, secrets: secrets.length, secretsFound: [...hits].filter((i) => i > 0).length };
      }));
    expect(r.monitor.relayKeyFound, 'the relay\'s own public key found in its memory (the scanner works)').toBe(1);
    expect(r.attacker.registered).toBe(20);
    expect(r.monitor.secrets).toBe(60);
    expect(r.monitor.secretsFound, 'handshake DH results (of 60) still in the relay\'s memory').toBe(0);
  }, 90_000);
});
