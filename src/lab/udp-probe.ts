#!/usr/bin/env node
// Tiny network probe for proving a lab topology without the agent: a STUN-less
// reflector/rendezvous, a hole-punch client, a UDP ping, and a TCP echo. Run inside lab
// namespaces as `node dist/src/lab/udp-probe.js MODE ...`; every mode prints JSON lines
// and exits on its own (bounded by its arguments).
//
// Reflector protocol (UTF-8 datagrams):
//   "map"              → "{"mapped":"IP:PORT"}"    the source address the server saw
//   "reg NAME"         → "{"mapped":"IP:PORT"}"    and remembers NAME at that address
//   "get NAME"         → "{"peer":"IP:PORT"}" or "{"peer":null}"
//   "ping N"           → "pong N"
// Punch packets between clients: "punch NAME" / "ack NAME".
import { createSocket, type Socket } from 'node:dgram';
import { createServer, connect } from 'node:net';

function out(obj: unknown): void { process.stdout.write(JSON.stringify(obj) + '\n'); }

function parseHostPort(s: string | undefined): { host: string; port: number } {
  const m = /^(\d+\.\d+\.\d+\.\d+):(\d+)$/.exec(s ?? '');
  if (!m) throw new Error(`expected IPv4:PORT, got ${JSON.stringify(s)}`);
  return { host: m[1]!, port: Number(m[2]) };
}

function bind(port: number): Promise<Socket> {
  const s = createSocket('udp4');
  return new Promise((resolve, reject) => { s.once('error', reject); s.bind(port, '0.0.0.0', () => resolve(s)); });
}

function request(s: Socket, to: { host: string; port: number }, text: string, ms: number): Promise<string | null> {
  return new Promise((resolve) => {
    const t = setTimeout(() => { s.off('message', on); resolve(null); }, ms);
    const on = (msg: Buffer, rinfo: { address: string; port: number }): void => {
      if (rinfo.address !== to.host || rinfo.port !== to.port) return;
      clearTimeout(t); s.off('message', on); resolve(msg.toString('utf8'));
    };
    s.on('message', on);
    s.send(text, to.port, to.host);
  });
}

async function reflector(port: number, lifetimeMs: number): Promise<void> {
  const s = await bind(port);
  const names = new Map<string, string>();
  s.on('message', (msg, r) => {
    const text = msg.toString('utf8');
    const from = `${r.address}:${r.port}`;
    const reply = (t: string): void => { s.send(t, r.port, r.address); };
    if (text === 'map') reply(JSON.stringify({ mapped: from }));
    else if (text.startsWith('reg ')) { names.set(text.slice(4), from); reply(JSON.stringify({ mapped: from })); }
    else if (text.startsWith('get ')) reply(JSON.stringify({ peer: names.get(text.slice(4)) ?? null }));
    else if (text.startsWith('ping ')) reply(`pong ${text.slice(5)}`);
  });
  out({ ready: true, port: s.address().port });
  setTimeout(() => process.exit(0), lifetimeMs).unref();
  await new Promise(() => undefined);
}

/** From one local port, ask each server what source address it sees. */
async function map(localPort: number, servers: string[]): Promise<void> {
  const s = await bind(localPort);
  const mapped: (string | null)[] = [];
  for (const srv of servers) {
    let got: string | null = null;
    for (let i = 0; i < 5 && got === null; i++) got = await request(s, parseHostPort(srv), 'map', 300);
    mapped.push(got ? (JSON.parse(got) as { mapped: string }).mapped : null);
  }
  out({ local: s.address().port, mapped });
  s.close();
}

/** Register with the reflector, learn the peer's mapped address, punch until a packet
 * from the peer arrives (exit 0) or the time is up (exit 1). */
async function punch(server: string, me: string, peer: string, timeoutMs: number): Promise<void> {
  const srv = parseHostPort(server);
  const s = await bind(0);
  const t0 = Date.now();
  let peerAddr: { host: string; port: number } | null = null;
  let gotFrom: string | null = null;
  let sent = 0;
  s.on('message', (msg, r) => {
    const text = msg.toString('utf8');
    if (text === `punch ${peer}` || text === `ack ${peer}`) {
      if (gotFrom === null) gotFrom = `${r.address}:${r.port}`;
      if (text.startsWith('punch')) s.send(`ack ${me}`, r.port, r.address);
    }
  });
  let mapped: string | null = null;
  while (Date.now() - t0 < timeoutMs && gotFrom === null) {
    if (mapped === null) {
      const rep = await request(s, srv, `reg ${me}`, 200);
      if (rep) mapped = (JSON.parse(rep) as { mapped: string }).mapped;
      continue;
    }
    if (peerAddr === null) {
      const rep = await request(s, srv, `get ${peer}`, 200);
      const p = rep ? (JSON.parse(rep) as { peer: string | null }).peer : null;
      if (p) peerAddr = parseHostPort(p); else await new Promise((r) => setTimeout(r, 50));
      continue;
    }
    s.send(`punch ${me}`, peerAddr.port, peerAddr.host);
    sent++;
    await new Promise((r) => setTimeout(r, 50));
  }
  const ok = gotFrom !== null;
  if (ok && peerAddr) {
    // keep answering for a moment so the peer sees us too
    for (let i = 0; i < 10; i++) { s.send(`punch ${me}`, peerAddr.port, peerAddr.host); await new Promise((r) => setTimeout(r, 50)); }
  }
  out({ ok, mapped, peer: peerAddr ? `${peerAddr.host}:${peerAddr.port}` : null, from: gotFrom, sent, ms: Date.now() - t0 });
  s.close();
  process.exit(ok ? 0 : 1);
}

/** Sequential pings to a reflector: RTT of each answered one, count of the lost. */
async function ping(server: string, count: number, intervalMs: number, timeoutMs: number): Promise<void> {
  const srv = parseHostPort(server);
  const s = await bind(0);
  const rtts: number[] = [];
  let lost = 0;
  for (let i = 0; i < count; i++) {
    const t = process.hrtime.bigint();
    const rep = await request(s, srv, `ping ${i}`, timeoutMs);
    if (rep === `pong ${i}`) rtts.push(Number(process.hrtime.bigint() - t) / 1e6); else lost++;
    if (intervalMs > 0) await new Promise((r) => setTimeout(r, intervalMs));
  }
  out({ sent: count, received: rtts.length, lost, rttsMs: rtts });
  s.close();
}

async function tcpEcho(port: number, lifetimeMs: number): Promise<void> {
  const srv = createServer((c) => { c.on('data', (d) => c.write(d)); c.on('error', () => undefined); });
  await new Promise<void>((r) => srv.listen(port, '0.0.0.0', r));
  out({ ready: true, port });
  setTimeout(() => process.exit(0), lifetimeMs).unref();
}

async function tcpPing(server: string, timeoutMs: number): Promise<void> {
  const { host, port } = parseHostPort(server);
  const t0 = Date.now();
  const ok = await new Promise<boolean>((resolve) => {
    const c = connect(port, host);
    const t = setTimeout(() => { c.destroy(); resolve(false); }, timeoutMs);
    c.on('connect', () => c.write('hello'));
    c.on('data', (d) => { if (d.toString() === 'hello') { clearTimeout(t); c.end(); resolve(true); } });
    c.on('error', () => { clearTimeout(t); resolve(false); });
  });
  out({ ok, ms: Date.now() - t0 });
  process.exit(ok ? 0 : 1);
}

async function main(argv: string[]): Promise<void> {
  const [mode, ...a] = argv;
  switch (mode) {
    case 'reflector': return reflector(Number(a[0]), Number(a[1] ?? 120_000));
    case 'map': return map(Number(a[0]), a.slice(1));
    case 'punch': return punch(a[0]!, a[1]!, a[2]!, Number(a[3] ?? 5000));
    case 'ping': return ping(a[0]!, Number(a[1] ?? 10), Number(a[2] ?? 0), Number(a[3] ?? 1000));
    case 'tcp-echo': return tcpEcho(Number(a[0]), Number(a[1] ?? 120_000));
    case 'tcp-ping': return tcpPing(a[0]!, Number(a[1] ?? 3000));
    default:
      process.stderr.write('usage: udp-probe reflector PORT [LIFETIME_MS] | map LOCALPORT SRV... | punch SRV ME PEER [MS] | ping SRV [N] [INTERVAL_MS] [TIMEOUT_MS] | tcp-echo PORT [LIFETIME_MS] | tcp-ping HOST:PORT [MS]\n');
      process.exit(2);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => { process.stderr.write(`udp-probe: ${String(err)}\n`); process.exit(2); });
