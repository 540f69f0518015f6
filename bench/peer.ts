// Benchmark endpoints, one process each (so they can run in different network namespaces):
//   server   TCP server standing in for MPyC's listener. A connection's first byte picks
//            the workload: 'P' ping (echo every byte back), 'B' bulk (bytes until the
//            client's FIN, answered by the received byte count, u64 LE, and FIN).
//            Prints {"listening":port} and {"firstByteAt":t} (first payload byte, abs ms).
//   ping     TCP client: --n round trips of --size bytes after --warm discarded ones.
//   bulk     TCP client: sends --bytes (at most --seconds) one way, waits for the count.
//   (ping and bulk: --stall S exits with code 3 when the connection makes no progress for S s)
//   ttfb     TCP client: connects (retrying every 5 ms, like MPyC's retry loop but finer),
//            sends one ping and reports when it was connected and when the echo came back.
//   rtc      WebRTC data channel peer (node-datachannel), --role offer|answer; signalling
//            as JSON lines on stdout/stdin relayed by the parent. The answerer echoes pings
//            and sinks bulk; the offerer runs the same ping and bulk workloads as TCP.
// Every result is one JSON line {"result": {...}} on stdout; times are absolute ms
// (performance.timeOrigin + now) so the parent can compare them with its own clock.
import { createServer, connect, type Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { createInterface } from 'node:readline';
import { nowAbs } from './lib/proc.js';
import { bulkClient, pingClient, pingPong, serveConnection, stallWatchdog } from './lib/workloads.js';

const out = (o: unknown): void => { process.stdout.write(JSON.stringify(o) + '\n'); };

function serve(host: string, port: number): void {
  let first = false;
  // allowHalfOpen: a bulk sender half-closes and waits for the byte count
  const srv = createServer({ allowHalfOpen: true }, (s) => {
    s.setNoDelay(true);
    serveConnection(s, () => { if (!first) { first = true; out({ firstByteAt: nowAbs() }); } });
  });
  srv.listen({ host, port }, () => out({ listening: (srv.address() as { port: number }).port }));
  process.on('SIGTERM', () => process.exit(0));
}

function connectRetry(host: string, port: number, deadline: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      const s = connect({ host, port });
      s.once('connect', () => { s.removeAllListeners('error'); s.setNoDelay(true); resolve(s); });
      s.once('error', () => {
        s.destroy();
        if (Date.now() > deadline) reject(new Error(`cannot connect to ${host}:${port}`));
        else setTimeout(attempt, 5);
      });
    };
    attempt();
  });
}

async function tcpClient(kind: string, host: string, port: number, v: Record<string, string | undefined>): Promise<void> {
  const deadline = Date.now() + Number(v.timeout ?? 60) * 1000;
  const startedAt = nowAbs();
  const s = await connectRetry(host, port, deadline);
  const connectedAt = nowAbs();
  // --stall S: exit with STALL_EXIT_CODE when the connection makes no progress for S seconds
  const disarm = v.stall ? stallWatchdog(s, Number(v.stall) + (kind === 'bulk' ? Number(v.seconds ?? 0) : 0), `peer ${kind}`) : () => {};
  if (kind === 'bulk') out({ result: await bulkClient(s, Number(v.bytes), Number(v.seconds ?? 1e9)) });
  else if (kind === 'ttfb') {
    await pingClient(s, Number(v.size ?? 64), 0, 1);
    out({ result: { startedAt, connectedAt, echoAt: nowAbs() } });
  } else {
    const samples = await pingClient(s, Number(v.size ?? 64), Number(v.warm ?? 0), Number(v.n));
    out({ result: { samplesUs: samples.map((x) => Math.round(x * 10) / 10) } });
  }
  disarm();
  s.destroy();
}

async function rtc(role: string, bind: string, v: Record<string, string | undefined>): Promise<void> {
  const ndc = await import('node-datachannel');
  const pc = new ndc.PeerConnection(role, { iceServers: [], bindAddress: bind });
  pc.onLocalDescription((sdp, type) => out({ signal: { sdp, type } }));
  pc.onLocalCandidate((candidate, mid) => out({ signal: { candidate, mid } }));
  const early: [string, string][] = [];
  let described = false;
  createInterface({ input: process.stdin }).on('line', (line) => {
    let m: { signal?: { sdp?: string; type?: string; candidate?: string; mid?: string } };
    try { m = JSON.parse(line) as typeof m; } catch { return; }
    const sig = m.signal;
    if (!sig) return;
    if (sig.sdp && sig.type) {
      pc.setRemoteDescription(sig.sdp, sig.type as 'offer' | 'answer');
      for (const [c, mid] of early.splice(0)) pc.addRemoteCandidate(c, mid);
      described = true;
    } else if (sig.candidate && sig.mid !== undefined) {
      // node-datachannel hands descriptions and candidates to JavaScript through separate
      // queues, so the peer's first candidates can overtake its description; a candidate
      // added before the remote description throws ("remote candidate without ICE transport")
      if (described) pc.addRemoteCandidate(sig.candidate, sig.mid);
      else early.push([sig.candidate, sig.mid]);
    }
  });
  const quit = (): void => { try { pc.close(); } catch { /* closing twice */ } ndc.cleanup(); process.exit(0); };
  process.on('SIGTERM', quit);
  if (role === 'answer') {
    pc.onDataChannel((dc) => {
      let bulkWant = -1, got = 0;
      dc.onMessage((msg) => {
        const b = typeof msg === 'string' ? Buffer.from(msg) : Buffer.from(msg as ArrayBuffer);
        if (b[0] === 0x42 && b.length === 9 && bulkWant < 0) { bulkWant = Number(b.readBigUInt64LE(1)); got = 0; return; }
        if (bulkWant >= 0) {
          got += b.length;
          if (got >= bulkWant) { dc.sendMessageBinary(Buffer.from('K')); bulkWant = -1; }
          return;
        }
        dc.sendMessageBinary(b);
      });
    });
    return;
  }
  const dc = pc.createDataChannel('bench');
  await new Promise<void>((resolve) => dc.onOpen(() => resolve()));
  const openAt = nowAbs();
  let cb: ((d: Buffer) => void) | null = null;
  dc.onMessage((msg) => cb?.(typeof msg === 'string' ? Buffer.from(msg) : Buffer.from(msg as ArrayBuffer)));
  const result: Record<string, unknown> = { openAt };
  if (Number(v.n) > 0) {
    const samples = await pingPong((b) => dc.sendMessageBinary(b), (f) => { cb = f; }, Number(v.size ?? 64), Number(v.warm ?? 0), Number(v.n));
    result.samplesUs = samples.map((x) => Math.round(x * 10) / 10);
  }
  const total = Number(v.bytes ?? 0);
  if (total > 0) {
    const hdr = Buffer.alloc(9);
    hdr[0] = 0x42;
    hdr.writeBigUInt64LE(BigInt(total), 1);
    const done = new Promise<void>((resolve) => { cb = () => resolve(); });
    const t0 = performance.now();
    dc.sendMessageBinary(hdr);
    const chunk = Buffer.alloc(16 * 1024, 0x62);
    let sent = 0;
    dc.setBufferedAmountLowThreshold(256 * 1024);
    await new Promise<void>((resolve) => {
      const pump = (): void => {
        while (sent < total && dc.bufferedAmount() < 1024 * 1024) {
          const n = Math.min(chunk.length, total - sent);
          dc.sendMessageBinary(n === chunk.length ? chunk : chunk.subarray(0, n));
          sent += n;
        }
        if (sent >= total) resolve();
      };
      dc.onBufferedAmountLow(pump);
      pump();
    });
    await done;
    const ms = performance.now() - t0;
    result.bulk = { bytes: total, ms, mbitPerS: (total * 8) / (ms * 1000) };
  }
  out({ result });
  quit();
}

async function main(): Promise<void> {
  const { positionals, values } = parseArgs({ allowPositionals: true, options: {
    host: { type: 'string' }, port: { type: 'string' }, n: { type: 'string' }, warm: { type: 'string' }, size: { type: 'string' },
    bytes: { type: 'string' }, seconds: { type: 'string' }, timeout: { type: 'string' }, stall: { type: 'string' }, role: { type: 'string' }, bind: { type: 'string' },
  } });
  const kind = positionals[0];
  const host = values.host ?? '127.0.0.1';
  if (kind === 'server') serve(host, Number(values.port ?? 0));
  else if (kind === 'ping' || kind === 'bulk' || kind === 'ttfb') await tcpClient(kind, host, Number(values.port), values);
  else if (kind === 'rtc') await rtc(values.role ?? 'offer', values.bind ?? '127.0.0.1', values);
  else throw new Error(`unknown peer mode ${kind}`);
}

main().catch((err: unknown) => {
  process.stderr.write(`peer: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
