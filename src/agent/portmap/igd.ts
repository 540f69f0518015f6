// UPnP Internet Gateway Device control (IGD v1 and v2, WANIPConnection / WANPPPConnection):
// the device description (HTTP GET of the SSDP LOCATION) names the connection service's
// control URL; SOAP actions on it add, renew and delete a UDP port mapping and read the
// external address. Bounded: every exchange has a timeout and a size cap, URLs stay on the
// gateway's own address, and XML is read with small anchored patterns (no parser, no
// entities beyond the five predefined ones).
import { request } from 'node:http';

/** preferred first */
const WAN_SERVICES = ['urn:schemas-upnp-org:service:WANIPConnection:2', 'urn:schemas-upnp-org:service:WANIPConnection:1', 'urn:schemas-upnp-org:service:WANPPPConnection:1'];
const MAX_BODY = 64 * 1024;
const HTTP_TIMEOUT_MS = 3_000;
/** UPnP errors we act on (IGD:1 WANIPConnection §2.4.16) */
export const UPNP_ERROR = { conflict: 718, onlyPermanentLeases: 725 } as const;

interface HttpAnswer { status: number; body: string; localAddress: string }

function http(url: URL, o: { method: 'GET' | 'POST'; headers?: Record<string, string>; body?: string }): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: o.method, headers: o.headers, timeout: HTTP_TIMEOUT_MS }, (res) => {
      const chunks: Buffer[] = [];
      let n = 0;
      res.on('data', (c: Buffer) => {
        n += c.length;
        if (n > MAX_BODY) { req.destroy(new Error(`answer from ${url.host} larger than ${MAX_BODY} bytes`)); return; }
        chunks.push(c);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), localAddress: req.socket?.localAddress ?? '' }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url.host} within ${HTTP_TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end(o.body);
  });
}

function unescapeXml(s: string): string {
  return s.replace(/&(lt|gt|amp|quot|apos);/g, (_, e: string) => ({ lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" })[e]!);
}

function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** The text of the first element named `tag` (any namespace prefix) in `xml`. */
export function xmlText(xml: string, tag: string): string | undefined {
  const m = new RegExp(`<(?:[\\w.-]+:)?${tag}(?:\\s[^>]*)?>([^<]*)</(?:[\\w.-]+:)?${tag}>`).exec(xml);
  return m ? unescapeXml(m[1]!.trim()) : undefined;
}

/** The WAN connection service of a device description: its type and absolute control URL (on the description's host). */
export function findWanService(xml: string, location: URL): { serviceType: string; controlUrl: URL } | undefined {
  const base = xmlText(xml, 'URLBase');
  const found: { serviceType: string; controlUrl: URL }[] = [];
  for (const m of xml.matchAll(/<(?:[\w.-]+:)?service>([\s\S]*?)<\/(?:[\w.-]+:)?service>/g)) {
    const type = xmlText(m[1]!, 'serviceType');
    const ctrl = xmlText(m[1]!, 'controlURL');
    if (!type || !ctrl || !WAN_SERVICES.includes(type)) continue;
    let url: URL;
    try { url = new URL(ctrl, base ? new URL(base, location) : location); } catch { continue; }
    if (url.protocol !== 'http:' || url.hostname !== location.hostname) continue;
    found.push({ serviceType: type, controlUrl: url });
  }
  found.sort((a, b) => WAN_SERVICES.indexOf(a.serviceType) - WAN_SERVICES.indexOf(b.serviceType));
  return found[0];
}

export type SoapResult = { ok: true; body: string } | { ok: false; code?: number; why: string };

export class IgdClient {
  private constructor(readonly controlUrl: URL, readonly serviceType: string, readonly localAddress: string) {}

  /** Reads the description at `location` and finds its WAN connection service. */
  static async open(location: URL): Promise<IgdClient> {
    const d = await http(location, { method: 'GET' });
    if (d.status !== 200) throw new Error(`device description ${location.href}: HTTP ${d.status}`);
    const svc = findWanService(d.body, location);
    if (!svc) throw new Error(`device description ${location.href}: no WAN connection service`);
    return new IgdClient(svc.controlUrl, svc.serviceType, d.localAddress);
  }

  /** One SOAP action; a UPnP error answer is a result (with its code), not an exception. */
  async action(name: string, args: [string, string | number][]): Promise<SoapResult> {
    const body = '<?xml version="1.0"?>\r\n<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>'
      + `<u:${name} xmlns:u="${this.serviceType}">${args.map(([k, v]) => `<${k}>${escapeXml(String(v))}</${k}>`).join('')}</u:${name}></s:Body></s:Envelope>\r\n`;
    const r = await http(this.controlUrl, {
      method: 'POST', body,
      headers: { 'Content-Type': 'text/xml; charset="utf-8"', SOAPAction: `"${this.serviceType}#${name}"`, 'Content-Length': String(Buffer.byteLength(body)) },
    });
    if (r.status === 200) return { ok: true, body: r.body };
    const code = Number(xmlText(r.body, 'errorCode'));
    return { ok: false, code: Number.isInteger(code) ? code : undefined, why: `${name}: HTTP ${r.status}${xmlText(r.body, 'errorDescription') ? ` ${xmlText(r.body, 'errorDescription')}` : ''}` };
  }

  async externalAddress(): Promise<string | undefined> {
    const r = await this.action('GetExternalIPAddress', []);
    return r.ok ? xmlText(r.body, 'NewExternalIPAddress') : undefined;
  }

  addUdpMapping(externalPort: number, internalPort: number, leaseSec: number, description: string): Promise<SoapResult> {
    return this.action('AddPortMapping', [
      ['NewRemoteHost', ''], ['NewExternalPort', externalPort], ['NewProtocol', 'UDP'], ['NewInternalPort', internalPort],
      ['NewInternalClient', this.localAddress], ['NewEnabled', 1], ['NewPortMappingDescription', description], ['NewLeaseDuration', leaseSec],
    ]);
  }

  deleteUdpMapping(externalPort: number): Promise<SoapResult> {
    return this.action('DeletePortMapping', [['NewRemoteHost', ''], ['NewExternalPort', externalPort], ['NewProtocol', 'UDP']]);
  }
}
