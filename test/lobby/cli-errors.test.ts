// What users get wrong and what a relay may try, with the built binaries and real relay
// processes: no key without consent, a damaged invite, a wrong secret, a tampering relay
// (an HTTP proxy in front of the real one), expiry, the per-source cap, lobbies off, the
// lobby metrics, the help texts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { join as pathJoin } from 'node:path';
import { decodeInvite, encodeInvite } from '../../src/lobby/invite.js';
import { LobbyKeys, KIND_ENTRY } from '../../src/lobby/keys.js';
import { OP_READ, STATUS, decodeRequest, decodeResponse, encodeResponse } from '../../src/lobby/wire.js';
import { PeerKey } from '../../src/common/peer-key.js';
import { generateKeyPair } from '../../src/noise/index.js';
import { encodeEntry } from '../../src/lobby/records.js';
import { CliWorld, relayCli, type CliRelay } from './cli-helpers.js';

const w = new CliWorld();
let relay: CliRelay;
beforeAll(async () => { relay = await w.startRelay('relay', ['--lobbies-per-source', '50']); });
afterAll(() => w.cleanup());

describe('mpyc-agent invite create / join: what users get wrong, and what a relay may try', () => {
  it('no key file: join says how to make one and creates none without --create-key', async () => {
    const invite = await w.createInvite(relay.address, 2);
    const r = await w.agent(['join', invite, '--key', 'nokey.key']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no key file at nokey\.key: create one with `mpyc-agent keygen --out nokey\.key`.*--create-key/);
    expect(existsSync(pathJoin(w.dir, 'nokey.key'))).toBe(false);
    const damaged = await w.agent(['join', invite.slice(0, -2), '--key', 'nokey.key']);
    expect(damaged.code).toBe(2);
    expect(damaged.stderr).toMatch(/damaged/);
  });

  it('an invite with a valid check but the wrong secret is rejected', async () => {
    const invite = await w.createInvite(relay.address, 2);
    const d = decodeInvite(invite);
    if (!d.ok) throw new Error(d.error);
    d.value.secret[0]! ^= 1;
    const r = await w.agent(['join', encodeInvite(d.value), '--name', 'mallory', '--create-key', '--key', 'mallory.key', '--out', 'mallory.json']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/secret does not match the lobby/);
    expect(existsSync(pathJoin(w.dir, 'mallory.json'))).toBe(false);
  });

  it('a tampering relay (a proxy that swaps a member\'s entry for its own) is detected and nothing is written', async () => {
    // the proxy forwards to the real relay and replaces the second entry of every view by a
    // box it sealed for another secret (it never learns the invite's)
    const fakeKeys = new LobbyKeys(PeerKey.fromBytes(generateKeyPair().publicKey), new Uint8Array(16), new Uint8Array(16).fill(1));
    const fakePair = generateKeyPair();
    const proxy: Server = createServer((req, res) => {
      const body: Buffer[] = [];
      req.on('data', (c: Buffer) => body.push(c));
      req.on('end', () => {
        const up = request({ host: '127.0.0.1', port: relay.httpPort, path: req.url, method: 'POST', headers: { 'content-type': 'application/octet-stream' } }, (ur) => {
          const chunks: Buffer[] = [];
          ur.on('data', (c: Buffer) => chunks.push(c));
          ur.on('end', () => {
            const q = decodeRequest(Buffer.concat(body));
            const r = decodeResponse(Buffer.concat(chunks));
            const second = q?.op === OP_READ && r?.status === STATUS.OK ? r.view.entries[1 - q.fromEntry] : undefined;
            if (second) second.box = fakeKeys.seal(KIND_ENTRY, second.tag, encodeEntry({ publicKey: fakePair.publicKey, joinedAt: 1, name: 'mallory' }));
            const out = r ? encodeResponse(r) : Buffer.concat(chunks);
            res.writeHead(ur.statusCode ?? 502, { 'content-type': 'application/octet-stream', 'content-length': out.length }).end(out);
          });
        });
        up.end(Buffer.concat(body));
      });
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
    try {
      const proxied = relay.address.replace(/\/\d+$/, `/${(proxy.address() as { port: number }).port}`);
      const invite = await w.createInvite(proxied, 2);
      const a = w.agent(['join', invite, '--name', 'alice', '--create-key', '--key', 'ta.key', '--out', 'ta.json', '--timeout', '5']);
      await new Promise((r) => setTimeout(r, 500));
      const b = w.agent(['join', invite, '--name', 'bob', '--create-key', '--key', 'tb.key', '--out', 'tb.json', '--timeout', '5']);
      const [ra, rb] = await Promise.all([a, b]);
      expect(ra.code).toBe(1);
      expect(rb.code).toBe(1);
      expect(ra.stderr).toMatch(/1 record\(s\) in the lobby do not authenticate/);
      expect(ra.stderr).toMatch(/gave up waiting for all members to join/);
      expect(rb.stderr).toMatch(/does not show it: it is dropping records/);
      expect(existsSync(pathJoin(w.dir, 'ta.json')) || existsSync(pathJoin(w.dir, 'tb.json'))).toBe(false);
    } finally {
      await new Promise<void>((r) => proxy.close(() => r()));
    }
  }, 30_000);

  it('lobby limits: expiry, lobbies per source, and the lobby gauges in /metrics', async () => {
    const small = await w.startRelay('small-relay', ['--lobby-ttl', '1', '--lobbies-per-source', '1']);
    const invite = await w.createInvite(small.address, 2);
    const capped = await w.agent(['invite', 'create', '--relay', small.address, '--parties', '2']);
    expect(capped.code).toBe(1);
    expect(capped.stderr).toMatch(/as many open lobbies from your address as it allows/);
    const metrics = await (await fetch(`http://127.0.0.1:${small.httpPort}/metrics`)).text();
    expect(metrics).toMatch(/^mpyc_relay_lobbies 1$/m);
    expect(metrics).toMatch(/^mpyc_relay_lobbies_created_total 1$/m);
    expect(metrics).toMatch(/^mpyc_relay_lobby_requests_total\{op="create",status="source_limit"\} 1$/m);
    await new Promise((r) => setTimeout(r, 1500));
    const late = await w.agent(['join', invite, '--name', 'x', '--create-key', '--key', 'x.key', '--out', 'x.json']);
    expect(late.code).toBe(1);
    expect(late.stderr).toMatch(/the lobby has expired/);
    const after = await (await fetch(`http://127.0.0.1:${small.httpPort}/metrics`)).text();
    expect(after).toMatch(/^mpyc_relay_lobbies 0$/m);
    expect(after).toMatch(/^mpyc_relay_lobbies_expired_total 1$/m);
    // the expired lobby freed its creator's slot
    expect((await w.agent(['invite', 'create', '--relay', small.address, '--parties', '2'])).code).toBe(0);
    const off = await w.startRelay('no-lobby-relay', ['--lobbies', '0']);
    const refused = await w.agent(['invite', 'create', '--relay', off.address, '--parties', '2']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/does not host lobbies/);
  }, 30_000);

  it('--help of both binaries lists the invite commands and the lobby flags', async () => {
    const top = await w.agent(['--help']);
    expect(top.stdout).toMatch(/mpyc-agent invite create/);
    expect(top.stdout).toMatch(/mpyc-agent join INVITE/);
    const joinHelp = await w.agent(['join', '--help']);
    for (const f of ['--name', '--key', '--create-key', '--out', '--force', '--timeout', '--up']) expect(joinHelp.stdout).toContain(f);
    const relayHelp = await new Promise<string>((r) => execFile(process.execPath, [relayCli, '--help'], (_e, out) => r(out)));
    for (const f of ['--lobbies', '--lobbies-per-source', '--lobby-parties', '--lobby-ttl']) expect(relayHelp).toContain(f);
  });
});
