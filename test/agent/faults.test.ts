// Failure modes on loopback: the relay dies under direct traffic, an agent restarts, the
// relay path runs over WebSocket (chosen or as the UDP fallback), the home relay dies with a
// second one in the session, generic port forwarding with half-close.
import { afterEach, describe, expect, it } from 'vitest';
import { createServer, connect, type Server } from 'node:net';
import { runParty } from '../../src/tools/mpyc-sim.js';
import { cluster, waitFor, type Cluster } from './helpers.js';

let c: Cluster | undefined;
const servers: Server[] = [];
afterEach(async () => {
  await c?.stopAll();
  c = undefined;
  for (const s of servers.splice(0)) s.close();
});

function party(cl: Cluster, i: number, rounds: number, bulkBytes: number, seed = 'f') {
  return runParty({ m: cl.parties.length, pid: i, basePort: cl.parties[i]!.localBase, host: 'localhost', rounds, bulkBytes, seed, timeoutMs: 45_000 });
}

const allDirect = (cl: Cluster): boolean => cl.parties.every((p) => p.agent!.status().peers.every((q) => q.state === 'direct'));

describe('agent fault handling', () => {
  it('killing the relay mid-run does not disturb pairs on direct paths', async () => {
    c = await cluster(3);
    for (let i = 0; i < 3; i++) await c.startAgent(i);
    const cl = c;
    await waitFor(() => allDirect(cl), 10_000, 'direct paths');
    const runs = [0, 1, 2].map((i) => party(cl, i, 300, 2_000_000));
    await new Promise((r) => setTimeout(r, 200));
    await cl.relays[0]!.server.stop(false);
    const stats = await Promise.all(runs);
    expect(stats.every((s) => s.messagesVerified > 0)).toBe(true);
    expect(allDirect(cl)).toBe(true);
    // and the agents notice the relay is gone (keepalive timeout) without leaving the direct paths
    await waitFor(() => cl.parties.every((p) => !p.agent!.status().relay.registered), 15_000, 'relay loss noticed');
    expect(allDirect(cl)).toBe(true);
  }, 60_000);

  it('an agent that restarts is re-handshaken by its peers and new connections work', async () => {
    c = await cluster(2);
    await c.startAgent(0);
    const first = await c.startAgent(1);
    const cl = c;
    expect((await Promise.all([party(cl, 0, 5, 10_000), party(cl, 1, 5, 10_000)])).every((s) => s.messagesVerified > 0)).toBe(true);
    await first.stop();
    await cl.startAgent(1); // same key and ports, new process state (new epoch, new session)
    const again = await Promise.all([party(cl, 0, 5, 10_000, 'g'), party(cl, 1, 5, 10_000, 'g')]);
    expect(again.every((s) => s.messagesVerified > 0)).toBe(true);
    expect(cl.parties[0]!.agent!.status().peers[0]!.handshakeAgeMs).toBeLessThan(20_000);
  }, 60_000);

  it('relay path over WebSocket (--relay-transport ws --relay-only)', async () => {
    c = await cluster(3);
    for (let i = 0; i < 3; i++) await c.startAgent(i, { relayOnly: true, relayTransport: 'ws' });
    const cl = c;
    const stats = await Promise.all([0, 1, 2].map((i) => party(cl, i, 10, 200_000)));
    expect(stats.every((s) => s.messagesVerified > 0)).toBe(true);
    for (const p of cl.parties) {
      const st = p.agent!.status();
      expect(st.relay.transport).toBe('ws');
      for (const q of st.peers) expect(q.path).toMatchObject({ kind: 'relay', transport: 'ws' });
    }
  }, 60_000);

  it('falls back to WebSocket when the relay does not answer over UDP', async () => {
    c = await cluster(2);
    // a UDP port nobody answers on: registration over UDP gets no reply
    for (const r of c.relayAddresses) r.udpPort = 9; // discard port, closed on loopback
    for (let i = 0; i < 2; i++) await c.startAgent(i, { relayOnly: true });
    const cl = c;
    await waitFor(() => cl.parties.every((p) => p.agent!.status().relay.registered), 10_000, 'registration over WebSocket');
    expect(cl.parties.every((p) => p.agent!.status().relay.transport === 'ws')).toBe(true);
    const stats = await Promise.all([party(cl, 0, 5, 10_000), party(cl, 1, 5, 10_000)]);
    expect(stats.every((s) => s.messagesVerified > 0)).toBe(true);
  }, 60_000);

  it('re-homes to the second relay when the home relay dies', async () => {
    c = await cluster(2, { relays: 2 });
    for (let i = 0; i < 2; i++) await c.startAgent(i, { relayOnly: true });
    const cl = c;
    await waitFor(() => cl.parties.every((p) => p.agent!.status().relay.registered), 10_000, 'registration');
    await cl.relays[0]!.server.stop(false);
    const second = cl.relayAddresses[1]!.publicKey;
    await waitFor(() => cl.parties.every((p) => { const r = p.agent!.status().relay; return r.registered && r.address.startsWith(second); }), 25_000, 'failover to relay 2');
    const stats = await Promise.all([party(cl, 0, 5, 10_000), party(cl, 1, 5, 10_000)]);
    expect(stats.every((s) => s.messagesVerified > 0)).toBe(true);
  }, 60_000);

  it('generic mode: a forwarded port reaches an allowed port on the peer, with half-close both ways', async () => {
    c = await cluster(2);
    const echo = createServer((s) => {
      const chunks: Buffer[] = [];
      s.on('data', (d: Buffer) => chunks.push(d));
      s.on('end', () => s.end(Buffer.concat([Buffer.from('echo:'), ...chunks])));
    });
    servers.push(echo);
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
    const echoPort = (echo.address() as { port: number }).port;
    const localPort = c.parties[0]!.localBase + 2; // outside the 2-party MPyC range
    await c.startAgent(0, { forwards: [{ localPort, peerIndex: 1, remotePort: echoPort }] });
    await c.startAgent(1, { allowedPorts: [echoPort] });
    const reply = await new Promise<string>((resolve, reject) => {
      const s = connect(localPort, '127.0.0.1', () => s.end('hello through the agents'));
      let got = '';
      s.on('data', (d: Buffer) => { got += d.toString(); });
      s.on('end', () => resolve(got));
      s.on('error', reject);
    });
    expect(reply).toBe('echo:hello through the agents');
    // a port the peer did not allow is refused: the local connection is reset, not hung
    await c.parties[0]!.agent!.stop();
    await c.startAgent(0, { forwards: [{ localPort, peerIndex: 1, remotePort: echoPort + 1 }] });
    const outcome = await new Promise<string>((resolve) => {
      const s = connect(localPort, '127.0.0.1', () => s.write('x'));
      s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
      s.on('end', () => resolve('end'));
      s.on('close', () => resolve('close'));
    });
    expect(['ECONNRESET', 'close', 'end']).toContain(outcome);
  }, 60_000);
});
