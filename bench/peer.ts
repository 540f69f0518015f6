// Benchmark endpoints, one process each (so they can run in different network namespaces):
//   server   TCP server standing in for MPyC's listener. A connection's first byte picks
//            the workload: 'P' ping (echo every byte back), 'B' bulk (bytes until the
//            client's FIN, answered by the received byte count, u64 LE, and FIN).
//            Prints {"listening":port} and {"firstByteAt":t} (first payload byte, abs ms).
//   ping     TCP client: --n round trips of --size bytes after --warm discarded ones.
//   bulk     TCP client: sends --bytes (at most --seconds) one way, waits for the count.
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

const out = (o: unknown): void => { process.stdout.write(JSON.stringify(o) + '\n'); };

/** Bytes queued in arrival order, read back in exact sizes without copying more than needed. */
class Bytes {
  private chunks: Buffer[] = [];
  length = 0;
  push(b: Buffer): void { this.chunks.push(b); this.length += b.length; }
  take(n: number): Buffer {
    const b = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const head = b.subarray(0, n);
    const rest = b.subarray(n);
    this.chunks = rest.length ? [rest] : [];
    this.length = rest.length;
    return head;
  }
}

function serve(host: string, port: number): void {
  let first = false;
  // allowHalfOpen: a bulk sender half-closes and waits for the byte count
  const srv = createServer({ allowHalfOpen: true }, (s) => {
    s.setNoDelay(true);
    let mode: 'P' | 'B' | null = null;
    let got = 0;
    s.on('data', (d: Buffer) => {
      if (!first) { first = true; out({ firstByteAt: nowAbs() }); }
      if (mode === null) { mode = d[0] === 0x42 ? 'B' : 'P'; d = d.subarray(1); }
      if (mode === 'P') { if (d.length) s.write(d); return; }
      got += d.length;
    });
    s.on('end', () => {
      if (mode !== 'B') { s.end(); return; }
      const count = Buffer.alloc(8);
      count.writeBigUInt64LE(BigInt(got));
      s.end(count);
    });
    s.on('error', () => s.destroy());
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

/** n round trips of `size` bytes on `s` after `warm` discarded ones; returns µs per round trip. */
function pingPong(send: (b: Buffer) => void, onData: (cb: (d: Buffer) => void) => void, size: number, warm: number, n: number): Promise<number[]> {
  return new Promise((resolve) => {
    const msg = Buffer.alloc(size, 0x61);
    const samples: number[] = [];
    let i = 0;
    let have = 0;
    let t = 0;
    const next = (): void => { have = 0; t = performance.now(); send(msg); };
    onData((d) => {
      have += d.length;
      if (have < size) return;
      const us = (performance.now() - t) * 1000;
      if (i++ >= warm) samples.push(us);
      if (samples.length >= n) resolve(samples);
      else next();
    });
    next();
  });
}

async function tcpClient(kind: string, host: string, port: number, v: Record<string, string | undefined>): Promise<void> {
  const deadline = Date.now() + Number(v.timeout ?? 60) * 1000;
  const startedAt = nowAbs();
  const s = await connectRetry(host, port, deadline);
  const connectedAt = nowAbs();
  if (kind === 'bulk') {
    // send until --bytes are sent or --seconds have passed, then half-close; the server
    // answers the FIN with the byte count it received, so the time covers every byte's delivery
    const limit = Number(v.bytes);
    const until = performance.now() + Number(v.seconds ?? 1e9) * 1000;
    const chunk = Buffer.alloc(64 * 1024, 0x62);
    const t0 = performance.now();
    let reply = Buffer.alloc(0);
    const done = new Promise<number>((resolve) => s.on('data', (d: Buffer) => {
      reply = Buffer.concat([reply, d]);
      if (reply.length >= 8) resolve(Number(reply.readBigUInt64LE(0)));
    }));
    s.write('B');
    let sent = 0;
    await new Promise<void>((resolve) => {
      const pump = (): void => {
        while (sent < limit && performance.now() < until) {
          const n = Math.min(chunk.length, limit - sent);
          sent += n;
          if (!s.write(n === chunk.length ? chunk : chunk.subarray(0, n))) { s.once('drain', pump); return; }
        }
        resolve();
      };
      pump();
    });
    s.end();
    const got = await done;
    const ms = performance.now() - t0;
    if (got !== sent) throw new Error(`bulk: sent ${sent} bytes, the server received ${got}`);
    out({ result: { bytes: sent, ms, mbitPerS: (sent * 8) / (ms * 1000) } });
  } else {
    s.write('P');
    let cb: ((d: Buffer) => void) | null = null;
    s.on('data', (d: Buffer) => cb?.(d));
    const n = kind === 'ttfb' ? 1 : Number(v.n);
    const samples = await pingPong((b) => s.write(b), (f) => { cb = f; }, Number(v.size ?? 64), kind === 'ttfb' ? 0 : Number(v.warm ?? 0), n);
    out({ result: kind === 'ttfb' ? { startedAt, connectedAt, echoAt: nowAbs() } : { samplesUs: samples.map((x) => Math.round(x * 10) / 10) } });
  }
  s.destroy();
}

async function rtc(role: string, bind: string, v: Record<string, string | undefined>): Promise<void> {
  const ndc = await import('node-datachannel');
  const pc = new ndc.PeerConnection(role, { iceServers: [], bindAddress: bind });
  pc.onLocalDescription((sdp, type) => out({ signal: { sdp, type } }));
  pc.onLocalCandidate((candidate, mid) => out({ signal: { candidate, mid } }));
  createInterface({ input: process.stdin }).on('line', (line) => {
    let m: { signal?: { sdp?: string; type?: string; candidate?: string; mid?: string } };
    try { m = JSON.parse(line) as typeof m; } catch { return; }
    const sig = m.signal;
    if (!sig) return;
    if (sig.sdp && sig.type) pc.setRemoteDescription(sig.sdp, sig.type as 'offer' | 'answer');
    else if (sig.candidate && sig.mid !== undefined) pc.addRemoteCandidate(sig.candidate, sig.mid);
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
    bytes: { type: 'string' }, seconds: { type: 'string' }, timeout: { type: 'string' }, role: { type: 'string' }, bind: { type: 'string' },
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
