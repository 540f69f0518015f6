// A local hyperdht testnet for the benchmark's peer systems (holesail, hyperdht): a few
// DHT nodes in this one process, bound to --host (loopback, or the relay host of the
// emulated WAN), so no system ever contacts the public bootstrap nodes. Prints
// {"msg":"ready","bootstrap":"host:port"} and runs until SIGTERM, then destroys its nodes.
// Usage: node dist/bench/dht-testnet.js --host 127.0.0.1 [--nodes 5]
import { parseArgs } from 'node:util';
import { requireCjs } from './lib/holepunch.js';

interface Testnet { bootstrap: Array<{ host: string; port: number }>; destroy(): Promise<void> }
const createTestnet = requireCjs('hyperdht/testnet.js') as (size: number, opts: { host: string }) => Promise<Testnet>;

const { values } = parseArgs({ options: { host: { type: 'string', default: '127.0.0.1' }, nodes: { type: 'string', default: '5' } } });
const testnet = await createTestnet(Number(values.nodes), { host: values.host! });
const b = testnet.bootstrap[0]!;
process.stdout.write(JSON.stringify({ msg: 'ready', bootstrap: `${b.host}:${b.port}` }) + '\n');
const quit = (): void => { void testnet.destroy().finally(() => process.exit(0)); };
process.once('SIGTERM', quit);
process.once('SIGINT', quit);
