// Which HTTP(S) proxy the agent's TCP connections to a relay go through (its WebSocket, the
// lobby requests of invite/join, netcheck's WebSocket probe — one rule for all, so netcheck
// reports the way the agent goes): an explicit option, or the conventional environment
// (HTTPS_PROXY for wss:// and https://, HTTP_PROXY for ws:// and http://, either case, an
// empty value counting as unset, ALL_PROXY as a fallback), minus hosts listed in NO_PROXY.
// Networks that block UDP often allow only HTTPS through a proxy; CONNECT carries the
// connection (and its TLS) unchanged.
import type { Agent } from 'node:http';
import { HttpsProxyAgent } from 'https-proxy-agent';

type Env = Record<string, string | undefined>;

const envOf = (env: Env, name: string): string | undefined => env[name] || env[name.toLowerCase()] || undefined;

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

/** The proxy URL for a relay URL (ws, wss, http, https), or undefined for a direct connection. */
export function proxyFor(url: string, option: string | undefined, env: Env = process.env): string | undefined {
  if (option !== undefined) return option === '' ? undefined : option;
  const u = new URL(url);
  const secure = u.protocol === 'wss:' || u.protocol === 'https:';
  const proxy = (secure ? envOf(env, 'HTTPS_PROXY') : envOf(env, 'HTTP_PROXY')) ?? envOf(env, 'ALL_PROXY');
  if (!proxy) return undefined;
  const port = u.port ? Number(u.port) : secure ? 443 : 80;
  return bypassesProxy(u.hostname, port, envOf(env, 'NO_PROXY')) ? undefined : proxy;
}

/** An http.Agent that tunnels through `proxy` with CONNECT, or undefined. */
export function proxyAgentFor(url: string, option: string | undefined, env: Env = process.env): Agent | undefined {
  const p = proxyFor(url, option, env);
  return p ? new HttpsProxyAgent(p) : undefined;
}
