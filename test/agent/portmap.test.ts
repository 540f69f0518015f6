// Port mapping (src/agent/portmap): the NAT-PMP and PCP wire formats checked against the
// lab's independent codec (src/lab/portmap-wire.ts, written from the RFCs by another
// engineer) and against fuzz; the mapper against fake gateways on loopback — PCP, a
// NAT-PMP-only gateway, no gateway at all (UPnP-IGD through a fake device), renewal at
// half the lifetime, deletion on close, UPnP's "permanent leases only" and "port taken".
// The real miniupnpd is in test/lab/reach-portmap.test.ts.
import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createSocket, type Socket } from 'node:dgram';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import * as lab from '../../src/lab/portmap-wire.js';
import { decodeNatPmpAnswer, encodeExternalAddressRequest, encodeMapUdpRequest } from '../../src/agent/portmap/natpmp-wire.js';
import { decodePcpAnswer, encodePcpMapRequest } from '../../src/agent/portmap/pcp-wire.js';
import { parseDefaultGateway } from '../../src/agent/portmap/default-gateway.js';
import { parseSsdpResponse } from '../../src/agent/portmap/ssdp.js';
import { findWanService, xmlText } from '../../src/agent/portmap/igd.js';
import { PortMapper, type PortMapping, type PortMapperOptions } from '../../src/agent/portmap/port-mapper.js';
import { waitFor } from './helpers.js';

const quiet = pino({ level: 'silent' });

describe('NAT-PMP and PCP wire formats', () => {
  it('our requests are byte for byte the lab codec\'s', () => {
    expect(encodeExternalAddressRequest()).toEqual(lab.encodeNatPmpAddressRequest());
    expect(encodeMapUdpRequest(40000, 40001, 600)).toEqual(lab.encodeNatPmpMapRequest(40000, 40001, 600));
    expect(encodeMapUdpRequest(40000, 0, 0)).toEqual(lab.encodeNatPmpMapRequest(40000, 0, 0));
    const nonce = new Uint8Array(12).map((_, i) => i + 1);
    const r = { clientAddress: '10.1.0.10', nonce, internalPort: 40000, suggestedExternalPort: 40000, lifetimeSec: 600 };
    expect(encodePcpMapRequest(r)).toEqual(lab.encodePcpMapRequest(r));
  });

  it('answers decode as the lab codec reads them', () => {
    const pmpMap = Uint8Array.of(0, 129, 0, 0, 0, 0, 0, 9, 0x9c, 0x40, 0x9c, 0x41, 0, 0, 2, 0x58);
    expect(decodeNatPmpAnswer(pmpMap)).toEqual({ kind: 'map', ...(lab.decodeNatPmpMapResponse(pmpMap) as { value: object }).value });
    const pmpAddr = Uint8Array.of(0, 128, 0, 0, 0, 0, 0, 9, 198, 18, 3, 2);
    const l = lab.decodeNatPmpAddressResponse(pmpAddr) as { ok: true; value: lab.NatPmpAddress };
    expect(decodeNatPmpAnswer(pmpAddr)).toEqual({ kind: 'external', result: l.value.result, epoch: l.value.epoch, address: l.value.externalAddress });
    const pcp = new Uint8Array(60);
    pcp.set([2, 0x81, 0, 0, 0, 0, 0x02, 0x58, 0, 0, 0, 7], 0);
    pcp.set(new Uint8Array(12).fill(5), 24);
    pcp[36] = 17;
    pcp.set([0x9c, 0x40, 0x9c, 0x42], 40);
    pcp.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 18, 3, 2], 44);
    const mine = decodePcpAnswer(pcp);
    expect(mine).toEqual({ kind: 'map', ...(lab.decodePcpMapResponse(pcp) as { value: object }).value });
    expect(mine).toMatchObject({ externalAddress: '198.18.3.2', externalPort: 40002, lifetimeSec: 600, epoch: 7 });
  });

  it('error answers, a NAT-PMP server\'s refusal of PCP, and malformed answers', () => {
    expect(decodeNatPmpAnswer(Uint8Array.of(0, 129, 0, 2))).toMatchObject({ kind: 'map', result: 2 });
    expect(decodeNatPmpAnswer(Uint8Array.of(0, 129, 0, 0, 0, 0, 0, 1))).toEqual({ kind: 'invalid', reason: 'short' });
    expect(decodeNatPmpAnswer(Uint8Array.of(1, 129, 0, 0))).toEqual({ kind: 'invalid', reason: 'version' });
    expect(decodeNatPmpAnswer(Uint8Array.of(0, 1, 0, 0))).toEqual({ kind: 'invalid', reason: 'opcode' });
    expect(decodeNatPmpAnswer(Uint8Array.of(0))).toEqual({ kind: 'invalid', reason: 'short' });
    expect(decodePcpAnswer(Uint8Array.of(0, 129, 0, 1, 0, 0, 0, 0))).toEqual({ kind: 'natpmp-only' });
    const err = new Uint8Array(24); err.set([2, 0x81, 0, 8]);
    expect(decodePcpAnswer(err)).toMatchObject({ kind: 'map', result: 8 });
    const ok = new Uint8Array(24); ok.set([2, 0x81, 0, 0]);
    expect(decodePcpAnswer(ok)).toEqual({ kind: 'invalid', reason: 'short' });
    expect(decodePcpAnswer(new Uint8Array(61).fill(0).map((_, i) => (i === 0 ? 2 : i === 1 ? 0x81 : 0)))).toEqual({ kind: 'invalid', reason: 'length' });
  });

  it('never throws on garbage', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 120 }), (b) => {
      expect(() => decodeNatPmpAnswer(b)).not.toThrow();
      expect(() => decodePcpAnswer(b)).not.toThrow();
    }), { numRuns: 3000 });
  });
});

describe('gateway, SSDP and IGD description parsing', () => {
  it('the default route\'s gateway from /proc/net/route', () => {
    const t = 'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n'
      + 'eth0\t0001A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n'
      + 'eth0\t00000000\t0101A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n';
    expect(parseDefaultGateway(t)).toBe('192.168.1.1');
    expect(parseDefaultGateway(t.split('\n').slice(0, 2).join('\n'))).toBeUndefined();
    expect(parseDefaultGateway('')).toBeUndefined();
  });

  it('an SSDP answer\'s LOCATION only on the answering address, over http', () => {
    const ans = (loc: string): string => `HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: upnp:rootdevice\r\nLocation: ${loc}\r\n\r\n`;
    expect(parseSsdpResponse(ans('http://10.1.0.1:5000/rootDesc.xml'), '10.1.0.1')?.href).toBe('http://10.1.0.1:5000/rootDesc.xml');
    expect(parseSsdpResponse(ans('http://10.9.9.9:5000/rootDesc.xml'), '10.1.0.1')).toBeUndefined();
    expect(parseSsdpResponse(ans('https://10.1.0.1/x'), '10.1.0.1')).toBeUndefined();
    expect(parseSsdpResponse(ans('not a url'), '10.1.0.1')).toBeUndefined();
    expect(parseSsdpResponse('NOTIFY * HTTP/1.1\r\nLOCATION: http://10.1.0.1/\r\n\r\n', '10.1.0.1')).toBeUndefined();
  });

  it('the WAN connection service of a description: v2 before v1, relative URLs, nothing off the device\'s host', () => {
    const loc = new URL('http://10.1.0.1:5000/rootDesc.xml');
    const svc = (type: string, ctrl: string): string => `<service><serviceType>${type}</serviceType><controlURL>${ctrl}</controlURL></service>`;
    const xml = `<root><device>${svc('urn:schemas-upnp-org:service:Layer3Forwarding:1', '/L3F')}${svc('urn:schemas-upnp-org:service:WANIPConnection:1', '/ctl/IPConn1')}${svc('urn:schemas-upnp-org:service:WANIPConnection:2', '/ctl/IPConn')}</device></root>`;
    expect(findWanService(xml, loc)).toEqual({ serviceType: 'urn:schemas-upnp-org:service:WANIPConnection:2', controlUrl: new URL('http://10.1.0.1:5000/ctl/IPConn') });
    expect(findWanService(svc('urn:schemas-upnp-org:service:WANPPPConnection:1', 'http://10.1.0.1:5000/ppp'), loc)?.controlUrl.pathname).toBe('/ppp');
    expect(findWanService(svc('urn:schemas-upnp-org:service:WANIPConnection:1', 'http://192.0.2.7/evil'), loc)).toBeUndefined();
    expect(xmlText('<s:Body><u:R><NewExternalIPAddress> 198.18.3.2 </NewExternalIPAddress></u:R>', 'NewExternalIPAddress')).toBe('198.18.3.2');
    expect(xmlText('<a>x &amp; y</a>', 'a')).toBe('x & y');
  });
});

/** A fake PCP / NAT-PMP gateway on 127.0.0.1 (an ephemeral port stands for 5351). */
class FakeGateway {
  readonly requests: Uint8Array[] = [];
  private constructor(readonly socket: Socket, readonly port: number) {}
  static async start(answer: (req: Uint8Array) => Uint8Array[] | undefined): Promise<FakeGateway> {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    const g = new FakeGateway(s, s.address().port);
    s.on('message', (msg, rinfo) => {
      const req = new Uint8Array(msg);
      g.requests.push(req);
      for (const a of answer(req) ?? []) s.send(a, rinfo.port, rinfo.address);
    });
    return g;
  }
  close(): void { this.socket.close(); }
}

function pcpAnswer(req: Uint8Array, o: { result?: number; lifetime?: number; port?: number } = {}): Uint8Array {
  const v = new DataView(req.buffer, req.byteOffset, req.byteLength);
  const out = new Uint8Array(60);
  const ov = new DataView(out.buffer);
  out[0] = 2; out[1] = 0x81; out[3] = o.result ?? 0;
  ov.setUint32(4, o.lifetime ?? v.getUint32(4));
  ov.setUint32(8, 1234);
  out.set(req.subarray(24, 60), 24); // nonce, protocol, internal port, suggestion
  ov.setUint16(42, o.port ?? (v.getUint16(42) || 50000));
  out.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 18, 3, 2], 44);
  return out;
}

let cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => { for (const c of cleanup.reverse()) await c(); cleanup = []; });

function mapper(o: Partial<PortMapperOptions>): { m: PortMapper; changes: (PortMapping | undefined)[] } {
  const changes: (PortMapping | undefined)[] = [];
  const m = new PortMapper({ internalPort: 40000, logger: quiet, onChange: (x) => changes.push(x), gateway: () => '127.0.0.1', discover: async () => undefined, ...o });
  cleanup.push(() => m.close(200));
  return { m, changes };
}

describe('PortMapper against fake gateways', () => {
  it('PCP: maps, renews at half the granted lifetime with the same nonce, deletes on close (lifetime 0)', async () => {
    const g = await FakeGateway.start((req) => (req[0] === 2 ? [pcpAnswer(req, { lifetime: new DataView(req.buffer).getUint32(4) === 0 ? 0 : 2 })] : undefined));
    cleanup.push(() => g.close());
    const { m, changes } = mapper({ gatewayPort: g.port, minRenewMs: 200 });
    m.start();
    await waitFor(() => changes.length === 1, 3000, 'mapping');
    expect(changes[0]).toEqual({ protocol: 'pcp', externalAddress: '198.18.3.2', externalPort: 40000, internalPort: 40000, lifetimeSec: 2 });
    // lifetime 2 s: renewed after ~1 s
    await waitFor(() => g.requests.length >= 2, 3000, 'renewal');
    const [first, renewal] = g.requests as [Uint8Array, Uint8Array];
    expect(renewal.subarray(24, 36)).toEqual(first.subarray(24, 36)); // the same mapping nonce
    expect(new DataView(renewal.buffer).getUint16(42)).toBe(40000); // asks for the port it has
    expect(new DataView(first.buffer).getUint32(4)).toBe(600);
    expect([...first.subarray(8, 24)]).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1]); // our address, as the gateway sees it
    const before = g.requests.length;
    await m.close(1000);
    const del = g.requests.slice(before);
    expect(del).toHaveLength(1);
    expect(new DataView(del[0]!.buffer).getUint32(4)).toBe(0);
    expect(del[0]!.subarray(24, 36)).toEqual(first.subarray(24, 36));
    expect(m.mapping).toBeUndefined();
  });

  it('closed while a renewal waits for its answer: the delete goes out at once (it does not queue behind the renewal)', async () => {
    let n = 0;
    const g = await FakeGateway.start((req) => (n++ === 1 ? undefined : [pcpAnswer(req, { lifetime: new DataView(req.buffer).getUint32(4) === 0 ? 0 : 1 })]));
    cleanup.push(() => g.close());
    const { m, changes } = mapper({ gatewayPort: g.port, minRenewMs: 200 });
    m.start();
    await waitFor(() => changes.length === 1, 3000, 'mapping');
    await waitFor(() => g.requests.length === 2, 3000, 'the renewal sent (and left unanswered)');
    const t0 = performance.now();
    await m.close(1000);
    expect(performance.now() - t0).toBeLessThan(500);
    const del = g.requests.at(-1)!;
    expect(new DataView(del.buffer).getUint32(4)).toBe(0);
  });

  it('a NAT-PMP-only gateway: PCP refused with its version error, then NAT-PMP (external address, map, delete)', async () => {
    const g = await FakeGateway.start((req) => {
      if (req[0] === 2) return [Uint8Array.of(0, 129, 0, 1, 0, 0, 0, 0)];
      if (req[1] === 0) return [Uint8Array.of(0, 128, 0, 0, 0, 0, 0, 5, 198, 18, 3, 2)];
      const v = new DataView(req.buffer, req.byteOffset);
      const life = v.getUint32(8);
      return [Uint8Array.of(0, 129, 0, 0, 0, 0, 0, 5, req[4]!, req[5]!, life === 0 ? 0 : 0xc3, life === 0 ? 0 : 0x50, 0, 0, (life >> 8) & 0xff, life & 0xff)];
    });
    cleanup.push(() => g.close());
    const { m, changes } = mapper({ gatewayPort: g.port });
    m.start();
    await waitFor(() => changes.length === 1, 3000, 'mapping');
    expect(changes[0]).toEqual({ protocol: 'natpmp', externalAddress: '198.18.3.2', externalPort: 50000, internalPort: 40000, lifetimeSec: 600 });
    await m.close(1000);
    const last = g.requests.at(-1)!;
    expect([...last]).toEqual([...encodeMapUdpRequest(40000, 0, 0)]);
  });

  it('garbage from the gateway is ignored (the request is retried and the mapper lives on)', async () => {
    let n = 0;
    const g = await FakeGateway.start((req) => (n++ < 2 ? [Uint8Array.of(2), Uint8Array.of(), Uint8Array.of(2, 0x81, 0, 0)] : [pcpAnswer(req)]));
    cleanup.push(() => g.close());
    const { m, changes } = mapper({ gatewayPort: g.port });
    m.start();
    await waitFor(() => changes.length === 1, 5000, 'mapping after garbage');
    expect(changes[0]?.protocol).toBe('pcp');
    expect(g.requests.length).toBe(3);
  });

  it('no PCP/NAT-PMP server (port unreachable): UPnP-IGD; a lease-less gateway gets a permanent mapping on another port; deleted on close', async () => {
    const closed = createSocket('udp4');
    await new Promise<void>((r) => closed.bind(0, '127.0.0.1', () => r()));
    const deadPort = closed.address().port;
    closed.close();
    const igd = await fakeIgd({ leaseless: true, taken: [40000] });
    cleanup.push(() => new Promise<void>((r) => igd.server.close(() => r())));
    const { m, changes } = mapper({ gatewayPort: deadPort, discover: async () => igd.location });
    const t0 = performance.now();
    m.start();
    await waitFor(() => changes.length === 1, 5000, 'UPnP mapping');
    expect(performance.now() - t0).toBeLessThan(1500); // the unreachable port failed fast, not after the retries
    const got = changes[0]!;
    expect(got).toMatchObject({ protocol: 'upnp', externalAddress: '198.18.3.2', internalPort: 40000, lifetimeSec: 0 });
    expect(got.externalPort).not.toBe(40000);
    const adds = igd.calls.filter((c) => c.action === 'AddPortMapping');
    expect(adds.map((c) => [c.args.NewExternalPort, c.args.NewLeaseDuration])).toEqual([['40000', '600'], ['40000', '0'], [String(got.externalPort), '0']]);
    expect(adds[0]!.args).toMatchObject({ NewProtocol: 'UDP', NewInternalPort: '40000', NewInternalClient: '127.0.0.1', NewRemoteHost: '' });
    await m.close(1000);
    expect(igd.calls.at(-1)).toMatchObject({ action: 'DeletePortMapping', args: { NewExternalPort: String(got.externalPort), NewProtocol: 'UDP' } });
  });

  it('nothing anywhere: no mapping, no change reported, close is quick', async () => {
    const { m, changes } = mapper({ gateway: () => undefined, discover: async () => undefined });
    m.start();
    await new Promise((r) => setTimeout(r, 100));
    const t0 = performance.now();
    await m.close(500);
    expect(performance.now() - t0).toBeLessThan(300);
    expect(changes).toEqual([]);
  });
});

/** A fake UPnP IGD v1 on 127.0.0.1: description + SOAP control, recording every call. */
async function fakeIgd(o: { leaseless?: boolean; taken?: number[] }): Promise<{ server: Server; location: URL; calls: { action: string; args: Record<string, string> }[] }> {
  const calls: { action: string; args: Record<string, string> }[] = [];
  const type = 'urn:schemas-upnp-org:service:WANIPConnection:1';
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => { body += c.toString(); });
    req.on('end', () => {
      if (req.method === 'GET') {
        res.end(`<?xml version="1.0"?><root xmlns="urn:schemas-upnp-org:device-1-0"><device><deviceList><device><serviceList><service><serviceType>${type}</serviceType><controlURL>/ctl/IPConn</controlURL></service></serviceList></device></deviceList></device></root>`);
        return;
      }
      const action = /#(\w+)"?$/.exec(String(req.headers.soapaction))![1]!;
      const args: Record<string, string> = {};
      for (const m of body.matchAll(/<(New\w+)>([^<]*)<\/\1>/g)) args[m[1]!] = m[2]!;
      calls.push({ action, args });
      const fault = (code: number): void => { res.statusCode = 500; res.end(`<s:Envelope><s:Body><s:Fault><detail><UPnPError><errorCode>${code}</errorCode><errorDescription>e</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>`); };
      if (action === 'GetExternalIPAddress') { res.end(`<s:Envelope><s:Body><u:GetExternalIPAddressResponse xmlns:u="${type}"><NewExternalIPAddress>198.18.3.2</NewExternalIPAddress></u:GetExternalIPAddressResponse></s:Body></s:Envelope>`); return; }
      if (action === 'AddPortMapping') {
        if (o.leaseless && args.NewLeaseDuration !== '0') { fault(725); return; }
        if (o.taken?.includes(Number(args.NewExternalPort))) { fault(718); return; }
      }
      res.end('<s:Envelope><s:Body/></s:Envelope>');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { server, location: new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/rootDesc.xml`), calls };
}

describe('when the agent asks for a mapping', () => {
  const relay = (host: string) => ({ publicKey: 'k', host, udpPort: 3478 });
  it('by default with an Internet relay; never with --relay-only or when turned off; not in a session whose relays are all on this host', async () => {
    const { wantsPortMapping } = await import('../../src/agent/agent.js');
    expect(wantsPortMapping({ relayOnly: false, relays: [relay('198.18.1.2')] })).toBe(true);
    expect(wantsPortMapping({ relayOnly: false, relays: [relay('127.0.0.1'), relay('relay.example.org')] })).toBe(true);
    expect(wantsPortMapping({ relayOnly: true, relays: [relay('198.18.1.2')] })).toBe(false);
    expect(wantsPortMapping({ relayOnly: false, portMapping: false, relays: [relay('198.18.1.2')] })).toBe(false);
    expect(wantsPortMapping({ relayOnly: false, relays: [relay('127.0.0.1'), relay('::1'), relay('localhost')] })).toBe(false);
  });
});
