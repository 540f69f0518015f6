// Loading Holepunch's libraries (hyperdht, udx-native, holesail) under Node 20 for the
// benchmark's peer systems. They are CommonJS and target the Bare runtime; two things need
// wrapping, done here without touching node_modules:
//   - holesail's @holesail/hyper-cmd-lib-net requires `bare-dgram` (a Bare addon that does
//     not load under Node): the require is answered with node:dgram, the same API;
//   - holesail constructs `new HyperDHT()` with no options, i.e. the public bootstrap
//     nodes: every `require('hyperdht')` is answered with a subclass whose options default
//     to the bench's local testnet (bootstrap) and, where asked, `firewalled: false` (a WAN
//     without NAT: dht-rpc otherwise assumes it is unreachable and refuses to be a server).
import { createRequire } from 'node:module';
import type { ByteStream } from './workloads.js';

export const requireCjs = createRequire(import.meta.url);

export interface DhtKeyPair { publicKey: Buffer; secretKey: Buffer }
export interface DhtServer {
  listen(kp: DhtKeyPair): Promise<void>;
  close(): Promise<void>;
  on(ev: 'connection', cb: (s: ByteStream) => void): unknown;
}
export interface DhtNode {
  createServer(opts: object, onConnection?: (s: ByteStream) => void): DhtServer;
  connect(publicKey: Buffer, opts?: object): ByteStream & { once(ev: 'open', cb: () => void): unknown };
  fullyBootstrapped(): Promise<void>;
  destroy(): Promise<void>;
}
export interface DhtOptions { bootstrap?: string[]; firewalled?: boolean; host?: string; port?: number; keyPair?: DhtKeyPair }
export interface HyperDhtClass {
  new (opts?: DhtOptions): DhtNode;
  keyPair(seed?: Buffer): DhtKeyPair;
}

export const HyperDHT = requireCjs('hyperdht') as HyperDhtClass;

/** bootstrap "host:port" list from the --bootstrap option (comma-separated) */
export function parseBootstrap(s: string | undefined): string[] {
  const list = (s ?? '').split(',').filter(Boolean);
  if (list.length === 0) throw new Error('--bootstrap host:port is required: the bench never uses the public DHT');
  return list;
}

interface ModuleInternals { _load(request: string, parent: unknown, isMain: boolean): unknown }

/**
 * From now on `require('hyperdht')` anywhere in this process yields a HyperDHT whose
 * options default to `defaults`, and `require('bare-dgram')` yields node:dgram.
 */
export function redirectHolepunchRequires(defaults: DhtOptions): void {
  const Module = requireCjs('node:module') as ModuleInternals;
  class LocalDHT extends HyperDHT {
    constructor(opts: DhtOptions = {}) { super({ ...defaults, ...opts }); }
  }
  const load = Module._load;
  Module._load = function (this: unknown, request: string, parent: unknown, isMain: boolean): unknown {
    if (request === 'hyperdht') return LocalDHT;
    if (request === 'bare-dgram') return load.call(this, 'node:dgram', parent, isMain);
    return load.call(this, request, parent, isMain);
  };
}
