// UPnP-IGD discovery (UPnP Device Architecture 1.1 §1.3): an SSDP M-SEARCH to the
// multicast group, answered by unicast HTTP-over-UDP responses whose LOCATION header names
// the device description. Only a LOCATION on the responder's own address is taken (a LAN
// host cannot send us to fetch from elsewhere); answers are bounded and parsed leniently.
import { createSocket } from 'node:dgram';

const SSDP_GROUP = '239.255.255.250';
const SSDP_PORT = 1900;
/** the device types and services an Internet gateway answers to (v2 devices answer v1 searches too) */
const SEARCH_TARGETS = ['urn:schemas-upnp-org:device:InternetGatewayDevice:1', 'urn:schemas-upnp-org:service:WANIPConnection:1'];
/** ignore responses longer than this (a response is a few headers) */
const MAX_RESPONSE_LEN = 2048;

function mSearch(st: string, mxSec: number): Buffer {
  return Buffer.from(`M-SEARCH * HTTP/1.1\r\nHOST: ${SSDP_GROUP}:${SSDP_PORT}\r\nMAN: "ssdp:discover"\r\nMX: ${mxSec}\r\nST: ${st}\r\n\r\n`);
}

/** The LOCATION of an SSDP response (`HTTP/1.1 200 OK`), if it is an http:// URL on `from`. */
export function parseSsdpResponse(text: string, from: string): URL | undefined {
  const lines = text.split('\r\n');
  if (!/^HTTP\/1\.[01] 200\b/.test(lines[0] ?? '')) return undefined;
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':');
    if (i < 0 || line.slice(0, i).trim().toLowerCase() !== 'location') continue;
    let url: URL;
    try { url = new URL(line.slice(i + 1).trim()); } catch { return undefined; }
    return url.protocol === 'http:' && url.hostname === from ? url : undefined;
  }
  return undefined;
}

/**
 * Searches for an Internet gateway for up to `timeoutMs`; resolves with the first
 * description URL offered (undefined when none answers). Sends each search twice.
 */
export function discoverGateway(timeoutMs: number, signal?: AbortSignal): Promise<URL | undefined> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    let timer: NodeJS.Timeout | undefined;
    let resend: NodeJS.Timeout | undefined;
    const finish = (u: URL | undefined): void => {
      if (timer) clearTimeout(timer);
      if (resend) clearTimeout(resend);
      signal?.removeEventListener('abort', onAbort);
      try { s.close(); } catch { /* closed */ }
      resolve(u);
    };
    const onAbort = (): void => finish(undefined);
    signal?.addEventListener('abort', onAbort);
    s.on('error', () => finish(undefined));
    s.on('message', (msg, rinfo) => {
      if (msg.length > MAX_RESPONSE_LEN) return;
      const u = parseSsdpResponse(msg.toString('latin1'), rinfo.address);
      if (u) finish(u);
    });
    const mx = Math.max(1, Math.min(5, Math.floor(timeoutMs / 1000)));
    const sendAll = (): void => { for (const st of SEARCH_TARGETS) s.send(mSearch(st, mx), SSDP_PORT, SSDP_GROUP, () => undefined); };
    s.bind(0, () => {
      sendAll();
      resend = setTimeout(sendAll, Math.min(500, timeoutMs / 2));
      timer = setTimeout(() => finish(undefined), timeoutMs);
    });
  });
}
