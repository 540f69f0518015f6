// Which HTTP(S) proxy the relay client's WebSocket goes through: an explicit option, or
// the conventional environment (HTTPS_PROXY for wss://, HTTP_PROXY for ws://, either case,
// ALL_PROXY as a fallback), minus hosts listed in NO_PROXY. Networks that block UDP often
// allow only HTTPS through a proxy; CONNECT carries the WebSocket (and its TLS) unchanged.
import type { Agent } from 'node:http';
import { HttpsProxyAgent } from 'https-proxy-agent';

type Env = Record<string, string | undefined>;

const envOf = (env: Env, name: string): string | undefined => env[name] ?? env[name.toLowerCase()];

/** NO_PROXY: comma-separated hosts, '.domain' or 'domain' suffixes, optional ':port', '*'. */
export function bypassesProxy(host: string, port: number, noProxy: string | undefined): boolean {
  if (!noProxy) return false;
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return noProxy.split(/[,\s]+/).filter(Boolean).some((entry) => {
    if (entry === '*') return true;
    // host, host:port, [v6]:port or a bare IPv6 address (several colons, no port)
    const e = entry.toLowerCase();
    const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(e) ?? (e.split(':').length > 2 ? [e, e, undefined] : /^([^:]*)(?::(\d+))?$/.exec(e));
    if (!m) return false;
    if (m[2] && Number(m[2]) !== port) return false;
    const d = m[1]!.replace(/^\*?\./, '');
    return h === d || h.endsWith(`.${d}`);
  });
}

/** The proxy URL to use for a relay WebSocket URL, or undefined for a direct connection. */
export function proxyFor(wsUrl: string, option: string | undefined, env: Env = process.env): string | undefined {
  if (option !== undefined) return option === '' ? undefined : option;
  const u = new URL(wsUrl);
  const secure = u.protocol === 'wss:';
  const proxy = (secure ? envOf(env, 'HTTPS_PROXY') : envOf(env, 'HTTP_PROXY')) ?? envOf(env, 'ALL_PROXY');
  if (!proxy) return undefined;
  const port = u.port ? Number(u.port) : secure ? 443 : 80;
  return bypassesProxy(u.hostname, port, envOf(env, 'NO_PROXY')) ? undefined : proxy;
}

/** An http.Agent that tunnels through `proxy` with CONNECT, or undefined. */
export function proxyAgentFor(wsUrl: string, option: string | undefined, env: Env = process.env): Agent | undefined {
  const p = proxyFor(wsUrl, option, env);
  return p ? new HttpsProxyAgent(p) : undefined;
}
