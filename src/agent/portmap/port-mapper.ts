// One UDP port mapping on the home router for the agent's IPv4 socket: asked for by PCP
// (RFC 6887), else NAT-PMP (RFC 6886) — both on the default gateway's port 5351 — else
// UPnP-IGD (found by SSDP); renewed at half its lifetime; deleted on close (within the
// agent's stop grace). The mapped address is offered to peers as a candidate (source
// 'portmap'): with it a peer can reach us through a router whose NAT would otherwise
// let nothing in (e.g. a symmetric one). Failures are logged and retried rarely; the
// agent works the same without a mapping.
import { randomBytes } from 'node:crypto';
import { isIPv4 } from 'node:net';
import type { Logger } from 'pino';
import { defaultGateway } from './default-gateway.js';
import { GatewaySocket } from './gateway-socket.js';
import { decodeNatPmpAnswer, encodeExternalAddressRequest, encodeMapUdpRequest, NATPMP_PORT, NATPMP_RESULT } from './natpmp-wire.js';
import { decodePcpAnswer, encodePcpMapRequest, PCP_NONCE_LEN, PCP_RESULT } from './pcp-wire.js';
import { discoverGateway } from './ssdp.js';
import { IgdClient, UPNP_ERROR } from './igd.js';

/**
 * Asked lifetime: a mapping left behind by a crashed agent is gone within 10 min; renewing
 * at half of it costs one small exchange every 5 min.
 */
export const MAPPING_LIFETIME_SEC = 600;
/** never renew more often than this, whatever a gateway grants */
export const MIN_RENEW_MS = 30_000;
/** after no protocol gave a mapping, try again this much later (networks change rarely) */
export const RETRY_MS = 10 * 60_000;
/** how long SSDP discovery waits for a gateway to answer */
const SSDP_WAIT_MS = 2_000;
/** UPnP: other external ports tried when ours is taken (718 ConflictInMappingEntry) */
const UPNP_CONFLICT_TRIES = 3;
const UPNP_DESCRIPTION = 'mpyc-agent';

export type PortMapProtocol = 'pcp' | 'natpmp' | 'upnp';

export interface PortMapping {
  protocol: PortMapProtocol;
  externalAddress: string;
  externalPort: number;
  internalPort: number;
  /** 0: permanent (a UPnP gateway that supports no leases); deleted on close all the same */
  lifetimeSec: number;
}

export interface PortMapperOptions {
  /** the agent's IPv4 UDP port */
  internalPort: number;
  logger: Logger;
  /** the mapping appeared, changed, or is gone (undefined) */
  onChange(m: PortMapping | undefined): void;
  /** where NAT-PMP and PCP go (default: the default route's gateway) and its port (default 5351) */
  gateway?: () => string | undefined;
  gatewayPort?: number;
  /** finds a UPnP-IGD description URL (default: SSDP on the LAN) */
  discover?: (timeoutMs: number) => Promise<URL | undefined>;
  /** the protocols to try, in this order (default: PCP, NAT-PMP, UPnP-IGD; NAT-PMP is asked only after PCP found a NAT-PMP-only server, or when PCP is left out) */
  protocols?: readonly PortMapProtocol[];
  lifetimeSec?: number;
  /** never renew more often than this, whatever a gateway grants (default 30 s) */
  minRenewMs?: number;
}

export const ALL_PROTOCOLS: readonly PortMapProtocol[] = ['pcp', 'natpmp', 'upnp'];

/** What renews and deletes the mapping, per protocol. */
interface Holder {
  mapping: PortMapping;
  renew(): Promise<PortMapping | undefined>;
  remove(): Promise<void>;
  close(): void;
}

export class PortMapper {
  private holder?: Holder;
  private timer?: NodeJS.Timeout;
  private closed = false;
  private acquiring?: Promise<void>;

  constructor(private readonly o: PortMapperOptions) {}

  get mapping(): PortMapping | undefined { return this.holder?.mapping; }

  private get lifetimeSec(): number { return this.o.lifetimeSec ?? MAPPING_LIFETIME_SEC; }

  /** Starts asking (does not wait for an answer). */
  start(): void {
    this.acquiring = this.acquire();
  }

  private async acquire(): Promise<void> {
    const why: string[] = [];
    const protocols = this.o.protocols ?? ALL_PROTOCOLS;
    let holder: Holder | undefined;
    if (protocols.includes('pcp') || protocols.includes('natpmp')) {
      const gw = (this.o.gateway ?? defaultGateway)();
      if (gw && isIPv4(gw)) holder = await this.viaGatewayPort(gw, protocols, why);
      else why.push('no IPv4 default gateway for PCP / NAT-PMP');
    }
    if (!holder && !this.closed && protocols.includes('upnp')) holder = await this.viaUpnp(why);
    if (this.closed) {
      if (holder) await holder.remove().catch(() => undefined).finally(() => holder!.close());
      return;
    }
    if (!holder) {
      this.o.logger.info({ tried: why }, 'no port mapping from the router');
      this.schedule(RETRY_MS, () => this.start());
      return;
    }
    this.adopt(holder);
  }

  private adopt(holder: Holder): void {
    this.holder = holder;
    const m = holder.mapping;
    this.o.logger.info({ protocol: m.protocol, external: `${m.externalAddress}:${m.externalPort}`, internalPort: m.internalPort, lifetimeSec: m.lifetimeSec }, 'port mapping');
    this.o.onChange(m);
    this.scheduleRenewal();
  }

  private scheduleRenewal(): void {
    const life = this.holder!.mapping.lifetimeSec;
    if (life === 0) return; // permanent: nothing to renew
    this.schedule(Math.max(this.o.minRenewMs ?? MIN_RENEW_MS, (life * 1000) / 2), () => { void this.renew(); });
  }

  private async renew(): Promise<void> {
    const h = this.holder;
    if (!h || this.closed) return;
    const before = h.mapping;
    const m = await h.renew().catch(() => undefined);
    if (this.closed) return;
    if (!m) {
      this.o.logger.warn({ protocol: before.protocol, external: `${before.externalAddress}:${before.externalPort}` }, 'port mapping lost: renewal failed; asking again');
      h.close();
      this.holder = undefined;
      this.o.onChange(undefined);
      this.start();
      return;
    }
    h.mapping = m;
    if (m.externalAddress !== before.externalAddress || m.externalPort !== before.externalPort) {
      this.o.logger.info({ protocol: m.protocol, external: `${m.externalAddress}:${m.externalPort}` }, 'port mapping moved');
      this.o.onChange(m);
    }
    this.scheduleRenewal();
  }

  private schedule(ms: number, f: () => void): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(f, ms);
    this.timer.unref();
  }

  /** Deletes the mapping, waiting at most `withinMs` for the router's answer; idempotent. */
  async close(withinMs: number): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    const h = this.holder;
    this.holder = undefined;
    const work = (async () => {
      if (h) await h.remove().catch((err: unknown) => this.o.logger.debug({ err: String(err) }, 'port mapping: delete failed'));
      await this.acquiring; // an acquisition under way deletes what it gets (closed is set)
    })();
    await Promise.race([work, new Promise((r) => setTimeout(r, withinMs).unref())]);
    h?.close();
    if (h) this.o.logger.info({ protocol: h.mapping.protocol, external: `${h.mapping.externalAddress}:${h.mapping.externalPort}` }, 'port mapping deleted');
  }

  // ------------------------------------------------------------------ PCP and NAT-PMP

  private async viaGatewayPort(gateway: string, protocols: readonly PortMapProtocol[], why: string[]): Promise<Holder | undefined> {
    let sock: GatewaySocket;
    try { sock = await GatewaySocket.open(gateway, this.o.gatewayPort ?? NATPMP_PORT); } catch (err) { why.push(`PCP / NAT-PMP: ${String(err)}`); return undefined; }
    try {
      if (protocols.includes('pcp')) {
        const pcp = await this.pcp(sock, why);
        if (pcp !== 'natpmp-only') { if (!pcp) sock.close(); return pcp; }
      }
      if (!protocols.includes('natpmp')) { sock.close(); return undefined; }
      const pmp = await this.natPmp(sock, why);
      if (!pmp) sock.close();
      return pmp;
    } catch (err) {
      // ICMP port unreachable: the router runs neither
      why.push(`PCP / NAT-PMP at ${gateway}: ${String(err)}`);
      sock.close();
      return undefined;
    }
  }

  private async pcp(sock: GatewaySocket, why: string[]): Promise<Holder | undefined | 'natpmp-only'> {
    const nonce = new Uint8Array(randomBytes(PCP_NONCE_LEN));
    const internalPort = this.o.internalPort;
    const ask = async (lifetimeSec: number, suggestedPort: number): Promise<ReturnType<typeof decodePcpAnswer> | undefined> => {
      const req = encodePcpMapRequest({ nonce, clientAddress: sock.localAddress, internalPort, suggestedExternalPort: suggestedPort, lifetimeSec });
      let answer: ReturnType<typeof decodePcpAnswer> | undefined;
      await sock.request(req, (b) => {
        const a = decodePcpAnswer(b);
        // only the answer to this mapping: same nonce and internal port (or the NAT-PMP refusal)
        if (a.kind === 'natpmp-only' || (a.kind === 'map' && (a.result !== PCP_RESULT.success || (Buffer.from(a.nonce).equals(Buffer.from(nonce)) && a.internalPort === internalPort)))) { answer = a; return true; }
        return false;
      });
      return answer;
    };
    const toMapping = (a: ReturnType<typeof decodePcpAnswer> | undefined): PortMapping | undefined =>
      a?.kind === 'map' && a.result === PCP_RESULT.success && isIPv4(a.externalAddress) && a.externalPort > 0
        ? { protocol: 'pcp', externalAddress: a.externalAddress, externalPort: a.externalPort, internalPort, lifetimeSec: a.lifetimeSec } : undefined;
    const first = await ask(this.lifetimeSec, internalPort);
    if (first?.kind === 'natpmp-only') return 'natpmp-only';
    const mapping = toMapping(first);
    if (!mapping) {
      why.push(first === undefined ? 'PCP: no answer' : `PCP: ${first.kind === 'map' ? `result ${first.result}` : first.reason}`);
      return undefined;
    }
    return {
      mapping,
      renew: async () => toMapping(await ask(this.lifetimeSec, mapping.externalPort)),
      remove: async () => { await ask(0, 0); },
      close: () => sock.close(),
    };
  }

  private async natPmp(sock: GatewaySocket, why: string[]): Promise<Holder | undefined> {
    const internalPort = this.o.internalPort;
    let external: string | undefined;
    await sock.request(encodeExternalAddressRequest(), (b) => {
      const a = decodeNatPmpAnswer(b);
      if (a.kind !== 'external') return false;
      if (a.result === NATPMP_RESULT.success) external = a.address;
      return true;
    });
    if (!external || !isIPv4(external)) { why.push('NAT-PMP: no external address'); return undefined; }
    const ask = async (lifetimeSec: number, suggestedPort: number): Promise<{ port: number; lifetimeSec: number } | undefined> => {
      let got: { port: number; lifetimeSec: number } | undefined;
      await sock.request(encodeMapUdpRequest(internalPort, suggestedPort, lifetimeSec), (b) => {
        const a = decodeNatPmpAnswer(b);
        if (a.kind !== 'map' || (a.result === NATPMP_RESULT.success && a.internalPort !== internalPort)) return false;
        if (a.result === NATPMP_RESULT.success) got = { port: a.externalPort, lifetimeSec: a.lifetimeSec };
        return true;
      });
      return got;
    };
    const toMapping = (g: { port: number; lifetimeSec: number } | undefined): PortMapping | undefined =>
      g && g.port > 0 ? { protocol: 'natpmp', externalAddress: external!, externalPort: g.port, internalPort, lifetimeSec: g.lifetimeSec } : undefined;
    const mapping = toMapping(await ask(this.lifetimeSec, internalPort));
    if (!mapping) { why.push('NAT-PMP: mapping refused or unanswered'); return undefined; }
    return {
      mapping,
      renew: async () => toMapping(await ask(this.lifetimeSec, mapping.externalPort)),
      // RFC 6886 §3.4: lifetime 0 and suggested external port 0 delete the mapping
      remove: async () => { await ask(0, 0); },
      close: () => sock.close(),
    };
  }

  // ------------------------------------------------------------------ UPnP-IGD

  private async viaUpnp(why: string[]): Promise<Holder | undefined> {
    const location = await (this.o.discover ?? discoverGateway)(SSDP_WAIT_MS);
    if (!location) { why.push('UPnP-IGD: no gateway answered SSDP'); return undefined; }
    let igd: IgdClient;
    try { igd = await IgdClient.open(location); } catch (err) { why.push(`UPnP-IGD: ${String(err)}`); return undefined; }
    try {
      const externalAddress = await igd.externalAddress();
      if (!externalAddress || !isIPv4(externalAddress)) { why.push('UPnP-IGD: no external address'); return undefined; }
      const internalPort = this.o.internalPort;
      let lease = this.lifetimeSec;
      let port = internalPort;
      for (let attempt = 0; attempt <= UPNP_CONFLICT_TRIES; attempt++) {
        const r = await igd.addUdpMapping(port, internalPort, lease, UPNP_DESCRIPTION);
        if (r.ok) {
          const mapping: PortMapping = { protocol: 'upnp', externalAddress, externalPort: port, internalPort, lifetimeSec: lease };
          const leaseNow = lease;
          const extPort = port;
          return {
            mapping,
            renew: async () => {
              const again = await igd.addUdpMapping(extPort, internalPort, leaseNow, UPNP_DESCRIPTION);
              const addr = again.ok ? await igd.externalAddress() : undefined;
              return again.ok && addr && isIPv4(addr) ? { ...mapping, externalAddress: addr } : undefined;
            },
            remove: async () => { await igd.deleteUdpMapping(extPort); },
            close: () => undefined,
          };
        }
        if (r.code === UPNP_ERROR.onlyPermanentLeases && lease !== 0) { lease = 0; continue; }
        if (r.code === UPNP_ERROR.conflict) { port = 1024 + (randomBytes(2).readUInt16BE(0) % (65536 - 1024)); continue; }
        why.push(`UPnP-IGD: ${r.why}`);
        return undefined;
      }
      why.push('UPnP-IGD: every external port tried was taken');
      return undefined;
    } catch (err) {
      why.push(`UPnP-IGD: ${String(err)}`);
      return undefined;
    }
  }
}
