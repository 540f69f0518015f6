// One holesail proxy process of the benchmark (the peer with our architecture: a hyperdht
// TCP proxy process per side), running the unmodified holesail-server / holesail-client
// libraries against the bench's local hyperdht testnet (lib/holepunch.ts does the
// wrapping Node 20 needs). One process per party, like one mpyc-agent per party:
//   --serve PORT            expose 127.0.0.1:PORT (holesail-server); prints
//                           {"msg":"serving","port":PORT,"key":KEY}
//   --connect KEY@PORT      listen on 127.0.0.1:PORT and carry each connection to the
//                           server with KEY (holesail-client); prints {"msg":"listening","port":PORT}
// both repeatable; then {"msg":"ready"}. SIGTERM destroys every server and client.
//   --bootstrap host:port   the testnet; --firewalled false on a WAN without NAT
import { parseArgs } from 'node:util';
import { parseBootstrap, redirectHolepunchRequires, requireCjs } from './lib/holepunch.js';

interface Closable { destroy(): Promise<void> }
interface HolesailServer extends Closable { key: string; start(args: { port: number; host: string }, cb: () => void): Promise<void> }
interface HolesailClient extends Closable { connect(opts: { port: number; host: string }, cb: () => void): Promise<void> }

const { values } = parseArgs({ options: {
  bootstrap: { type: 'string' }, firewalled: { type: 'string', default: 'true' },
  serve: { type: 'string', multiple: true, default: [] }, connect: { type: 'string', multiple: true, default: [] },
} });
redirectHolepunchRequires({ bootstrap: parseBootstrap(values.bootstrap), firewalled: values.firewalled !== 'false' });
const Server = requireCjs('holesail-server') as new () => HolesailServer;
const Client = requireCjs('holesail-client') as new (o: { key: string }) => HolesailClient;
const out = (o: unknown): void => { process.stdout.write(JSON.stringify(o) + '\n'); };

const live: Closable[] = [];
for (const p of values.serve!) {
  const port = Number(p);
  const server = new Server();
  live.push(server);
  // start() resolves once the DHT record is put; the callback once the server listens
  let listening!: () => void;
  await Promise.all([new Promise<void>((r) => { listening = r; }), server.start({ port, host: '127.0.0.1' }, () => listening())]);
  out({ msg: 'serving', port, key: server.key });
}
for (const c of values.connect!) {
  const at = c.lastIndexOf('@');
  const key = c.slice(0, at), port = Number(c.slice(at + 1));
  const client = new Client({ key });
  live.push(client);
  let listening!: () => void;
  await Promise.all([new Promise<void>((r) => { listening = r; }), client.connect({ port, host: '127.0.0.1' }, () => listening())]);
  out({ msg: 'listening', port });
}
out({ msg: 'ready' });
// a DHT whose testnet is already gone can take long to destroy: exit after 1 s regardless
const quit = (): void => {
  setTimeout(() => process.exit(0), 1000).unref();
  void Promise.allSettled(live.map((x) => x.destroy())).finally(() => process.exit(0));
};
process.once('SIGTERM', quit);
process.once('SIGINT', quit);
