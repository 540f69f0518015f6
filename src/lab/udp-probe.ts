#!/usr/bin/env node
// Tiny network probe for proving a lab topology without the agent: a STUN-less
// reflector/rendezvous, a hole-punch client, a UDP ping, a TCP echo, a STUN responder
// (for miniupnpd), a port-mapping client (NAT-PMP / PCP) and UPnP-IGD discovery. Run inside lab namespaces as
// `node dist/src/lab/udp-probe.js MODE ...`; every mode prints JSON lines and exits on
// its own (bounded by its arguments). Addresses are IPv4:PORT or [IPv6]:PORT; a socket's
// family follows the server it talks to.
//
// Reflector protocol (UTF-8 datagrams):
//   "map"              → "{"mapped":"IP:PORT"}"    the source address the server saw
//   "reg NAME"         → "{"mapped":"IP:PORT"}"    and remembers NAME at that address
//   "get NAME"         → "{"peer":"IP:PORT"}" or "{"peer":null}"
//   "ping N"           → "pong N"
// Punch packets between clients: "punch NAME" / "ack NAME".
import { createSocket, type Socket } from 'node:dgram';
import { SocketAddress, createServer, connect, isIPv4, isIPv6 } from 'node:net';
import { BINDING_REQUEST, encodeBindingSuccess, parseStun, stunAddressOf } from '../stun/codec.js';
import { requestMapping, type PortMapProtocol, type PortMapping } from './portmap-client.js';

type Family = 4 | 6;
interface Endpoint { host: string; port: number; family: Family }

function out(obj: unknown): void { process.stdout.write(JSON.stringify(obj) + '\n'); }

/** The canonical text of an IPv6 address (RFC 5952), so sources compare as strings. */
const canonical = (host: string, family: Family): string => (family === 6 ? new SocketAddress({ address: host, family: 'ipv6' }).address : host);

function parseHostPort(s: string | undefined): Endpoint {
  const m = /^(?:(\d+\.\d+\.\d+\.\d+)|\[([0-9a-fA-F:.]+)\]):(\d+)$/.exec(s ?? '');
  const port = Number(m?.[3]);
  if (!m || !(port >= 1 && port <= 65535) || (m[1] !== undefined && !isIPv4(m[1])) || (m[2] !== undefined && !isIPv6(m[2]))) {
    throw new Error(`expected IPv4:PORT or [IPv6]:PORT, got ${JSON.stringify(s)}`);
  }
  return m[1] !== undefined ? { host: m[1], port, family: 4 } : { host: canonical(m[2]!, 6), port, family: 6 };
}

const formatEndpoint = (host: string, port: number): string => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);

function bind(port: number, family: Family = 4): Promise<Socket> {
  // an IPv6 socket only for IPv6: IPv4 keeps its own socket (no ::ffff: sources)
  const s = createSocket(family === 6 ? { type: 'udp6', ipv6Only: true } : { type: 'udp4' });
  return new Promise((resolve, reject) => { s.once('error', reject); s.bind(port, family === 6 ? '::' : '0.0.0.0', () => resolve(s)); });
}

/** Send `text` to `to` and resolve with its first answer (one that `accept` takes), or
 * null after `ms`. A ping accepts only its own pong: a late answer to an earlier one
 * must not count as this one's (nor make it lost). */
function request(s: Socket, to: Endpoint, text: string, ms: number, accept: (reply: string) => boolean = () => true): Promise<string | null> {
  return new Promise((resolve) => {
    const t = setTimeout(() => { s.off('message', on); resolve(null); }, ms);
    const on = (msg: Buffer, rinfo: { address: string; port: number }): void => {
      if (rinfo.address !== to.host || rinfo.port !== to.port) return;
      const reply = msg.toString('utf8');
      if (!accept(reply)) return;
      clearTimeout(t); s.off('message', on); resolve(reply);
    };
    s.on('message', on);
    s.send(text, to.port, to.host);
  });
}

async function mappedVia(s: Socket, server: Endpoint, tries = 5, timeoutMs = 300): Promise<string | null> {
  let got: string | null = null;
  for (let i = 0; i < tries && got === null; i++) got = await request(s, server, 'map', timeoutMs);
  return got ? (JSON.parse(got) as { mapped: string }).mapped : null;
}

/** Answer the reflector protocol on a socket. */
function serveReflector(s: Socket): void {
  const names = new Map<string, string>();
  s.on('message', (msg, r) => {
    const text = msg.toString('utf8');
    const from = formatEndpoint(r.address, r.port);
    const reply = (t: string): void => { s.send(t, r.port, r.address); };
    if (text === 'map') reply(JSON.stringify({ mapped: from }));
    else if (text.startsWith('reg ')) { names.set(text.slice(4), from); reply(JSON.stringify({ mapped: from })); }
    else if (text.startsWith('get ')) reply(JSON.stringify({ peer: names.get(text.slice(4)) ?? null }));
    else if (text.startsWith('ping ')) reply(`pong ${text.slice(5)}`);
  });
}

function exitAfter(ms: number): Promise<never> {
  setTimeout(() => process.exit(0), ms).unref();
  return new Promise(() => undefined);
}

/** Answer the protocol above on PORT (IPv4, and IPv6 where the node has it). With
 * `announce`, first send "map" to that server from PORT, which opens a NAT mapping
 * (and conntrack entry) towards it only — the server need not answer (then the mapped
 * address is null after 2 tries of 150 ms); with `keepaliveMs`, send to it that often. */
async function reflector(port: number, lifetimeMs: number, announce?: string, keepaliveMs?: number): Promise<void> {
  const target = announce ? parseHostPort(announce) : undefined;
  const sockets = [await bind(port, target?.family ?? 4)];
  if (!target) { try { sockets.push(await bind(port, 6)); } catch { /* no IPv6 here */ } }
  if (target) {
    out({ announced: announce, mapped: await mappedVia(sockets[0]!, target, 2, 150) });
    if (keepaliveMs) setInterval(() => sockets[0]!.send('keepalive', target.port, target.host), keepaliveMs).unref();
  }
  for (const s of sockets) serveReflector(s);
  out({ ready: true, port: sockets[0]!.address().port, families: sockets.length });
  return exitAfter(lifetimeMs);
}

/** From one local port, ask each server what source address it sees. */
async function map(localPort: number, servers: string[]): Promise<void> {
  const eps = servers.map(parseHostPort);
  const s = await bind(localPort, eps[0]?.family ?? 4);
  const mapped: (string | null)[] = [];
  for (const srv of eps) mapped.push(await mappedVia(s, srv));
  out({ local: s.address().port, mapped });
  s.close();
}

/** Register with the reflector, learn the peer's mapped address, punch until a packet
 * from the peer arrives (exit 0) or the time is up (exit 1). */
async function punch(server: string, me: string, peer: string, timeoutMs: number): Promise<void> {
  const srv = parseHostPort(server);
  const s = await bind(0, srv.family);
  const t0 = Date.now();
  let peerAddr: Endpoint | null = null;
  let gotFrom: string | null = null;
  let sent = 0;
  s.on('message', (msg, r) => {
    const text = msg.toString('utf8');
    if (text === `punch ${peer}` || text === `ack ${peer}`) {
      if (gotFrom === null) gotFrom = formatEndpoint(r.address, r.port);
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
  out({ ok, mapped, peer: peerAddr ? formatEndpoint(peerAddr.host, peerAddr.port) : null, from: gotFrom, sent, ms: Date.now() - t0 });
  s.close();
  process.exit(ok ? 0 : 1);
}

/** Sequential pings to a reflector: RTT of each answered one, count of the lost. */
async function ping(server: string, count: number, intervalMs: number, timeoutMs: number, localPort: number): Promise<void> {
  const srv = parseHostPort(server);
  const s = await bind(localPort, srv.family);
  const rtts: number[] = [];
  let lost = 0;
  for (let i = 0; i < count; i++) {
    const t = process.hrtime.bigint();
    const rep = await request(s, srv, `ping ${i}`, timeoutMs, (r) => r === `pong ${i}`);
    if (rep !== null) rtts.push(Number(process.hrtime.bigint() - t) / 1e6); else lost++;
    if (intervalMs > 0) await new Promise((r) => setTimeout(r, intervalMs));
  }
  out({ sent: count, received: rtts.length, lost, rttsMs: rtts });
  s.close();
}

async function tcpEcho(port: number, lifetimeMs: number): Promise<void> {
  const srv = createServer((c) => { c.on('data', (d) => c.write(d)); c.on('error', () => undefined); });
  await new Promise<void>((r) => srv.listen(port, '0.0.0.0', r));
  out({ ready: true, port });
  return exitAfter(lifetimeMs);
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

/** A STUN responder with one address (see miniupnpd.ts): every Binding request, whatever
 * its attributes (RFC 3489 CHANGE-REQUEST included), is answered from this socket with
 * the source it came from. Unparsable datagrams are counted and dropped. */
async function stun(port: number, lifetimeMs: number): Promise<void> {
  const s = await bind(port);
  let answered = 0; let dropped = 0;
  s.on('message', (msg, r) => {
    const p = parseStun(msg);
    if (!p.ok || p.message.type !== BINDING_REQUEST) { dropped++; return; }
    s.send(encodeBindingSuccess(p.message.transactionId, stunAddressOf(r.address, r.port)), r.port, r.address);
    answered++;
  });
  process.on('SIGTERM', () => { out({ answered, dropped }); process.exit(0); });
  out({ ready: true, port });
  return exitAfter(lifetimeMs);
}

/** Ask the gateway for a mapping of LOCALPORT, print it, answer the reflector protocol on
 * that port for HOLD_MS, then delete the mapping (lifetime 0) and print that answer.
 * With `announce`, first send one "map" from the port to that server (an outbound flow
 * of the mapped port, through the router's own NAT). */
async function portmap(protocol: string, gateway: string, localPort: number, lifetimeSec: number, holdMs: number, announce?: string): Promise<void> {
  if (protocol !== 'natpmp' && protocol !== 'pcp') throw new Error(`protocol must be natpmp or pcp, got ${JSON.stringify(protocol)}`);
  const s = await bind(localPort);
  const m = await requestMapping(s, protocol as PortMapProtocol, gateway, lifetimeSec);
  const show = (x: PortMapping): Omit<PortMapping, 'nonce'> => { const { nonce: _n, ...rest } = x; return rest; };
  out({ mapping: show(m), external: formatEndpoint(m.externalAddress, m.externalPort) });
  if (m.result !== 0) process.exit(1);
  if (announce) out({ announced: announce, mapped: await mappedVia(s, parseHostPort(announce)) });
  serveReflector(s);
  await new Promise((r) => setTimeout(r, holdMs));
  const d = await requestMapping(s, protocol as PortMapProtocol, gateway, 0, { suggestedExternalPort: m.externalPort, nonce: m.nonce });
  out({ deleted: show(d) });
  s.close();
}

/** UPnP-IGD discovery as a client does it (UPnP Device Architecture 1.1 §1.3.2): an SSDP
 * M-SEARCH to the multicast group, then the device description at the answer's LOCATION.
 * Prints the location and the device types the description names. */
async function ssdp(timeoutMs: number): Promise<void> {
  const SSDP_GROUP = '239.255.255.250';
  const SSDP_PORT = 1900;
  const target = 'urn:schemas-upnp-org:device:InternetGatewayDevice:1';
  const s = await bind(0);
  const location = await new Promise<string | null>((resolve) => {
    const t = setTimeout(() => resolve(null), timeoutMs);
    s.on('message', (msg) => {
      const m = /^location:\s*(\S+)\s*$/im.exec(msg.toString('utf8'));
      if (m) { clearTimeout(t); resolve(m[1]!); }
    });
    s.send(`M-SEARCH * HTTP/1.1\r\nHOST: ${SSDP_GROUP}:${SSDP_PORT}\r\nMAN: "ssdp:discover"\r\nMX: 1\r\nST: ${target}\r\n\r\n`, SSDP_PORT, SSDP_GROUP);
  });
  s.close();
  if (location === null) { out({ ok: false, location: null }); process.exit(1); }
  const res = await fetch(location, { signal: AbortSignal.timeout(timeoutMs) });
  const body = await res.text();
  const deviceTypes = [...body.matchAll(/<deviceType>([^<]+)<\/deviceType>/g)].map((m) => m[1]);
  out({ ok: res.ok, location, deviceTypes });
}

async function main(argv: string[]): Promise<void> {
  const [mode, ...a] = argv;
  switch (mode) {
    case 'reflector': return reflector(Number(a[0]), Number(a[1] ?? 120_000), a[2], a[3] ? Number(a[3]) : undefined);
    case 'map': return map(Number(a[0]), a.slice(1));
    case 'punch': return punch(a[0]!, a[1]!, a[2]!, Number(a[3] ?? 5000));
    case 'ping': return ping(a[0]!, Number(a[1] ?? 10), Number(a[2] ?? 0), Number(a[3] ?? 1000), Number(a[4] ?? 0));
    case 'tcp-echo': return tcpEcho(Number(a[0]), Number(a[1] ?? 120_000));
    case 'tcp-ping': return tcpPing(a[0]!, Number(a[1] ?? 3000));
    case 'stun': return stun(Number(a[0]), Number(a[1] ?? 120_000));
    case 'portmap': return portmap(a[0]!, a[1]!, Number(a[2]), Number(a[3] ?? 120), Number(a[4] ?? 10_000), a[5]);
    case 'ssdp': return ssdp(Number(a[0] ?? 3000));
    default:
      process.stderr.write('usage: udp-probe reflector PORT [LIFETIME_MS [ANNOUNCE_SRV [KEEPALIVE_MS]]] | map LOCALPORT SRV... | punch SRV ME PEER [MS] | ping SRV [N [INTERVAL_MS [TIMEOUT_MS [LOCALPORT]]]] | tcp-echo PORT [LIFETIME_MS] | tcp-ping HOST:PORT [MS] | stun PORT [LIFETIME_MS] | portmap natpmp|pcp GATEWAY LOCALPORT [LIFETIME_S [HOLD_MS [ANNOUNCE_SRV]]] | ssdp [TIMEOUT_MS]\n');
      process.exit(2);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => { process.stderr.write(`udp-probe: ${String(err)}\n`); process.exit(2); });
