// One MPyC-like party (src/tools/mpyc-sim.ts: MPyC's connection pattern and framing, every
// byte verified) as a benchmark child process; prints {"result": PartyStats}.
// Usage: node dist/bench/mpc-party.js --m 3 --pid I --base B [--host H] [--listen-host H] --rounds N
import { parseArgs } from 'node:util';
import { runParty } from '../src/tools/mpyc-sim.js';

const { values } = parseArgs({ options: {
  m: { type: 'string', default: '3' }, pid: { type: 'string' }, base: { type: 'string' }, host: { type: 'string', default: '127.0.0.1' },
  'listen-host': { type: 'string', default: '127.0.0.1' }, rounds: { type: 'string', default: '1000' }, 'msg-size': { type: 'string', default: '32' },
  timeout: { type: 'string', default: '120' },
} });
runParty({
  m: Number(values.m), pid: Number(values.pid), basePort: Number(values.base), host: values.host, listenHost: values['listen-host'],
  rounds: Number(values.rounds), msgSize: Number(values['msg-size']), bulkBytes: 0, timeoutMs: Number(values.timeout) * 1000,
  // a finer connect retry than MPyC's 100 ms: the parties start together and the wait is not what is measured
  retryMs: 10,
}).then((stats) => {
  process.stdout.write(JSON.stringify({ result: stats }) + '\n');
}, (err: unknown) => {
  process.stderr.write(`mpc-party: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
