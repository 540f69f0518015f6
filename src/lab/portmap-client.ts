// The lab probe's port-mapping client: asks a gateway for a UDP mapping with NAT-PMP or
// PCP (portmap-wire.ts) over the caller's socket, so the mapping's internal port is the
// socket's own. Retransmits as RFC 6886 §3.1 says (250 ms, doubling), bounded in tries.
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import {
  PCP_NONCE_LEN, PORT_MAPPING_PORT, decodeNatPmpAddressResponse, decodeNatPmpMapResponse, decodePcpMapResponse,
  encodeNatPmpAddressRequest, encodeNatPmpMapRequest, encodePcpMapRequest, type Decoded,
} from './portmap-wire.js';

export type PortMapProtocol = 'natpmp' | 'pcp';

export interface PortMapping {
  protocol: PortMapProtocol;
  externalAddress: string;
  externalPort: number;
  internalPort: number;
  lifetimeSec: number;
  /** the protocol's result code: 0 = success */
  result: number;
  /** PCP: the request's nonce, needed to renew or delete the mapping */
  nonce?: Uint8Array;
}

/** first retransmission after this long, then doubling (RFC 6886 §3.1) */
const FIRST_RETRY_MS = 250;
/** 4 tries: 250 + 500 + 1000 + 2000 ms, under 4 s in all (RFC 6886 allows 9; a lab gateway is one hop away) */
const MAX_TRIES = 4;

/** Send `req` to the gateway until a datagram from it decodes (or the tries run out). */
async function exchange<T>(s: Socket, gateway: string, req: Uint8Array, decode: (b: Uint8Array) => Decoded<T>): Promise<T> {
  let lastReason = 'no answer';
  for (let i = 0, wait = FIRST_RETRY_MS; i < MAX_TRIES; i++, wait *= 2) {
    const got = await new Promise<T | null>((resolve) => {
      const t = setTimeout(() => { s.off('message', on); resolve(null); }, wait);
      const on = (msg: Buffer, r: { address: string; port: number }): void => {
        if (r.address !== gateway || r.port !== PORT_MAPPING_PORT) return;
        const d = decode(msg);
        if (!d.ok) { lastReason = d.reason; return; }
        clearTimeout(t); s.off('message', on); resolve(d.value);
      };
      s.on('message', on);
      s.send(req, PORT_MAPPING_PORT, gateway);
    });
    if (got !== null) return got;
  }
  throw new Error(`${gateway}:${PORT_MAPPING_PORT}: ${lastReason} after ${MAX_TRIES} tries`);
}

/** The local IPv4 address this host uses towards the gateway (PCP wants it in the request). */
async function localAddressTowards(gateway: string): Promise<string> {
  const probe = createSocket('udp4');
  try {
    await new Promise<void>((resolve, reject) => { probe.once('error', reject); probe.connect(PORT_MAPPING_PORT, gateway, () => resolve()); });
    return probe.address().address;
  } finally { probe.close(); }
}

/**
 * Ask for a UDP mapping of the socket's port, or with lifetime 0 delete it: NAT-PMP
 * deletes by internal port (suggested port 0, RFC 6886 §3.4), PCP only with the nonce of
 * the request that made the mapping (RFC 6887 §11.1): pass the returned `nonce` back.
 */
export async function requestMapping(s: Socket, protocol: PortMapProtocol, gateway: string, lifetimeSec: number, o: { suggestedExternalPort?: number; nonce?: Uint8Array } = {}): Promise<PortMapping> {
  const suggestedExternalPort = lifetimeSec === 0 && protocol === 'natpmp' ? 0 : o.suggestedExternalPort ?? 0;
  const internalPort = s.address().port;
  if (protocol === 'natpmp') {
    const addr = await exchange(s, gateway, encodeNatPmpAddressRequest(), decodeNatPmpAddressResponse);
    const m = await exchange(s, gateway, encodeNatPmpMapRequest(internalPort, suggestedExternalPort, lifetimeSec), decodeNatPmpMapResponse);
    return { protocol, externalAddress: addr.externalAddress, externalPort: m.externalPort, internalPort: m.internalPort, lifetimeSec: m.lifetimeSec, result: m.result || addr.result };
  }
  const nonce = o.nonce ?? randomBytes(PCP_NONCE_LEN);
  const req = encodePcpMapRequest({ clientAddress: await localAddressTowards(gateway), nonce, internalPort, suggestedExternalPort, lifetimeSec });
  if (!req) throw new Error('PCP needs an IPv4 client address');
  // a response belongs to this request only if it echoes the nonce (RFC 6887 §11.3)
  const m = await exchange(s, gateway, req, (b) => {
    const d = decodePcpMapResponse(b);
    return d.ok && !Buffer.from(d.value.nonce).equals(nonce) ? { ok: false, reason: 'nonce mismatch' } : d;
  });
  return { protocol, externalAddress: m.externalAddress, externalPort: m.externalPort, internalPort: m.internalPort, lifetimeSec: m.lifetimeSec, result: m.result, nonce };
}
