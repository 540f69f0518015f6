// `mpyc-relay serve` configuration as an operator uses it (built binary): flags >
// MPYC_RELAY_* variables > config file > defaults, --check and the origin of each setting,
// the exit codes of bad configuration and bad files, SIGHUP reload of the config file (the
// allow-list and the log level at once, in every worker; other changes logged as needing
// a restart), and what --help loads.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import * as dgram from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { RelayClient } from '../../src/relay/client.js';
import { writeKeyFile } from '../../src/common/keys.js';
import { PeerKey } from '../../src/common/peer-key.js';
import { generateKeyPair, type KeyPair } from '../../src/noise/index.js';
import { Daemon, relayCli, type RunResult } from '../cli/helpers.js';
import { waitFor } from './helpers.js';

let dir: string;
let keyFile: string;
let relayPub: string;
const daemons: Daemon[] = [];
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'relay-config-'));
  keyFile = join(dir, 'relay.key');
  const kp = writeKeyFile(keyFile);
  kp.privateKey.fill(0);
  relayPub = PeerKey.fromBytes(kp.publicKey).text;
});
afterEach(async () => { for (const d of daemons.splice(0)) await d.stop(); });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** the environment without any MPYC_RELAY_* of the test runner's own */
function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('MPYC_RELAY_')) e[k] = v;
  return { ...e, ...extra };
}

function relay(args: string[], e: NodeJS.ProcessEnv = env(), nodeArgs: string[] = []): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [...nodeArgs, relayCli, ...args], { timeout: 20_000, env: e }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

/** `serve --check` output → option → [JSON value, origin] */
function settings(stdout: string): Map<string, [unknown, string]> {
  const m = new Map<string, [unknown, string]>();
  for (const line of stdout.split('\n')) {
    const r = /^ {2}([\w-]+) +(.+?) {2}\((.+)\)$/.exec(line);
    if (r) m.set(r[1]!, [JSON.parse(r[2]!), r[3]!]);
  }
  return m;
}

let seq = 0;
function file(text: string | object, name = `config-${seq++}.json`): string {
  const f = join(dir, name);
  writeFileSync(f, typeof text === 'string' ? text : JSON.stringify(text, null, 2));
  return f;
}

/** a UDP port free a moment ago on loopback */
async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** A relay client on its own socket; resolves to the state it settles in ('registered' or 'rejected'). */
async function tryRegister(udpPort: number, keyPair: KeyPair): Promise<string> {
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  const client = new RelayClient({ relayKey: relayPub, keyPair, transport: 'udp', sendUdp: (b) => sock.send(b, udpPort, '127.0.0.1') });
  sock.on('message', (m) => client.handleDatagram(m));
  try {
    client.start();
    await waitFor(() => client.state === 'registered' || client.state === 'rejected', 5000, 'an answer to the registration');
    return client.state;
  } finally { client.close(); sock.close(); }
}

describe('mpyc-relay serve: configuration', () => {
  it('each setting comes from the flag, else the variable, else the config file, else the default, and --check says which', async () => {
    const cfg = file(`{\n  "key": ${JSON.stringify(keyFile)},\n  "udp": "127.0.0.1:0",\n  "rate": 500,\n  "http": "off",\n  "max-agents": "7"\n}\n`);
    const vars = env({ MPYC_RELAY_CONFIG: cfg, MPYC_RELAY_RATE: '700', MPYC_RELAY_STUN_RATE: '3' });
    const [flag, variable, inFile, none] = await Promise.all([
      relay(['serve', '--check', '--rate', '900'], vars),
      relay(['serve', '--check'], vars),
      relay(['serve', '--check', '--config', cfg]),
      relay(['serve', '--check', '--key', keyFile]),
    ]);
    for (const r of [flag, variable, inFile, none]) expect(r.code, r.stderr).toBe(0);
    expect(flag.stdout).toMatch(new RegExp(`^mpyc-relay serve: settings are valid; relay key ${relayPub.replace(/[+/]/g, '\\$&')}\nconfig file: ${cfg}\nallow-list: none`));
    const f = settings(flag.stdout);
    expect(f.get('rate')).toEqual([900, '--rate']);
    expect(f.get('burst')).toEqual([450, 'default']); // rate/2 follows the rate in force
    expect(f.get('stun-rate')).toEqual([3, 'MPYC_RELAY_STUN_RATE']);
    expect(f.get('key')).toEqual([keyFile, `${cfg}:2:10: key`]);
    expect(f.get('max-agents')).toEqual([7, `${cfg}:6:17: max-agents`]);
    expect(f.get('http')).toEqual(['off', `${cfg}:5:11: http`]);
    expect(f.get('udp')).toEqual(['127.0.0.1:0', `${cfg}:3:10: udp`]);
    expect(f.get('public-host')).toEqual(['127.0.0.1', 'default']); // the --udp host
    expect(f.get('expiry')).toEqual([35, 'default']);
    expect(f.get('lobby-parties')).toEqual([64, 'default']);
    expect(settings(variable.stdout).get('rate')).toEqual([700, 'MPYC_RELAY_RATE']);
    expect(settings(inFile.stdout).get('rate')).toEqual([500, `${cfg}:4:11: rate`]);
    const defaults = settings(none.stdout);
    expect(defaults.get('rate')).toEqual([100000, 'default']);
    expect(defaults.get('udp')).toEqual(['0.0.0.0:3478', 'default']);
    expect(defaults.get('public-host')).toEqual([null, 'default']); // a wildcard bind names no host
    // --check listens on nothing: the default ports need not be free, and it returned already
    expect(none.stdout).toContain('allow-list: none (any agent key may register)');
  });

  it('the running relay uses the merged settings: the UDP address from the file, HTTP off from the variable', async () => {
    const cfg = file({ key: keyFile, udp: '127.0.0.1:0', 'log-format': 'json' });
    const d = new Daemon(process.execPath, [relayCli, 'serve'], env({ MPYC_RELAY_CONFIG: cfg, MPYC_RELAY_HTTP: 'off' }));
    daemons.push(d);
    const listening = await d.record('listening');
    expect(listening).toMatchObject({ http: null, httpPort: null, config: cfg, relayAddress: `${relayPub}@127.0.0.1:${listening.udpPort as number}` });
  });

  it('bad configuration exits 2 naming the file, line and key, or the variable; bad key, TLS or allow-list files exit 3; --check catches them all', async () => {
    const fx = join(import.meta.dirname, 'fixtures');
    const garbage = file('# not a key\nhello\n', 'allow-garbage');
    const cases: [string[], NodeJS.ProcessEnv, number, RegExp][] = [
      [['serve', '--config', file(`{\n  "key": ${JSON.stringify(keyFile)},\n  "udp-port": 5\n}`)], env(), 2, /^mpyc-relay: .*config-\d+\.json:3:15: udp-port: unknown option \(known: key, udp, http, /],
      [['serve', '--config', file(`{"key": ${JSON.stringify(keyFile)}, "rate": true}`)], env(), 2, /config-\d+\.json:1:\d+: rate: expected a string or a number, found boolean true\n/],
      [['serve', '--config', file(`{"key": ${JSON.stringify(keyFile)},\n"rate": 0}`)], env(), 2, /config-\d+\.json:2:9: rate: must be an integer in 1\.\.1000000000, got "0"\n/],
      [['serve', '--config', file(`{"key": ${JSON.stringify(keyFile)}, "log-level": "loud"}`)], env(), 2, /: log-level: unknown level "loud" \(fatal, error, /],
      [['serve', '--config', file('{"key": "x",')], env(), 2, /config-\d+\.json:1:\d+: JSON syntax error/],
      [['serve', '--config', join(dir, 'none.json')], env(), 2, /none\.json: cannot read config file \(ENOENT\)\nUsage: mpyc-relay serve /],
      [['serve', '--config', dir], env(), 2, /: not a regular file/],
      [['serve', '--check'], env({ MPYC_RELAY_KEY: keyFile, MPYC_RELAY_UDP_PORT: '1' }), 2, /^mpyc-relay: MPYC_RELAY_UDP_PORT: unknown variable \(known: MPYC_RELAY_KEY, /],
      [['serve', '--check'], env({ MPYC_RELAY_KEY: keyFile, MPYC_RELAY_WORKERS: 'two' }), 2, /^mpyc-relay: MPYC_RELAY_WORKERS: must be an integer in 1\.\.256, got "two"/],
      [['serve', '--check', '--key', keyFile, '--lobby-ttl', '0'], env(), 2, /^mpyc-relay: --lobby-ttl: expected an integer 1\.\.604800, got "0"/],
      [['serve', '--check', '--key', keyFile, '--expiry', '10'], env(), 2, /--expiry: 10 s must be more than the keepalive interval \(10 s, the default\)/],
      [['serve', '--check', '--key', keyFile, '--http', 'off', '--tls-cert', join(fx, 'tls-cert.pem'), '--tls-key', join(fx, 'tls-key.pem')], env(), 2, /TLS needs the HTTP port/],
      [['serve', '--check', '--ratee', '1'], env(), 2, /^mpyc-relay: unknown option --ratee \(did you mean --rate\?\)/],
      [['serve', '--check'], env(), 2, /--key FILE is required/],
      [['serve', '--check', '--key', join(dir, 'nokey')], env(), 3, /nokey: cannot read key file \(ENOENT\); create one with: mpyc-relay keygen --out /],
      [['serve', '--check', '--key', keyFile, '--allow', join(dir, 'noallow')], env(), 3, /noallow: cannot read allow-list \(ENOENT\)\n$/],
      [['serve', '--check', '--key', keyFile, '--allow', garbage], env(), 3, /allow-garbage:2: a key is 44 base64 characters, got 5/],
      [['serve', '--check', '--key', keyFile, '--tls-cert', join(fx, 'tls-cert.pem'), '--tls-key', join(fx, 'tls-cert.pem')], env(), 3, /tls-cert\.pem: not a usable PEM certificate chain and its key/],
      [['serve', '--check', '--key', keyFile, '--tls-cert', join(dir, 'nocert'), '--tls-key', join(fx, 'tls-key.pem')], env(), 3, /nocert: cannot read the TLS certificate \(ENOENT\)/],
    ];
    const results = await Promise.all(cases.map(([args, e]) => relay(args, e)));
    results.forEach((r, i) => {
      const [args, , code, re] = cases[i]!;
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(code);
      expect(r.stderr, args.join(' ')).toMatch(re);
      expect(r.stdout, args.join(' ')).toBe('');
    });
    // the same allow-list and certificate pass --check when they are good
    const goodAllow = file(`# one agent\n${PeerKey.fromBytes(generateKeyPair().publicKey).text}\n`, 'allow-good');
    const ok = await relay(['serve', '--check', '--key', keyFile, '--allow', goodAllow, '--tls-cert', join(fx, 'tls-cert.pem'), '--tls-key', join(fx, 'tls-key.pem')]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain('allow-list: 1 agent keys');
  });

  it('SIGHUP re-reads the config file: a key added to the allow-list it names can register, the log level applies, other changes are logged as needing a restart', async () => {
    const udpPort = await freeUdpPort();
    const agent = generateKeyPair();
    const emptyAllow = file('# nobody yet\n', 'allow-empty');
    const withAgent = file(`# the agent\n${PeerKey.fromBytes(agent.publicKey).text}\n`, 'allow-agent');
    const cfgPath = join(dir, 'hup.json');
    const cfg = (extra: object): void => writeFileSync(cfgPath, JSON.stringify({ key: keyFile, udp: `127.0.0.1:${udpPort}`, http: 'off', 'log-format': 'json', ...extra }));
    cfg({ allow: emptyAllow, 'log-level': 'warn' });
    const d = new Daemon(process.execPath, [relayCli, 'serve', '--config', cfgPath], env());
    daemons.push(d);
    expect(await tryRegister(udpPort, agent)).toBe('rejected');
    expect(d.records().filter((r) => r.level === 'info')).toEqual([]); // warn level: not even "listening"

    cfg({ allow: withAgent, 'log-level': 'info', 'max-agents': 5 });
    d.child.kill('SIGHUP');
    // an info line: the new level is in force
    expect(await d.record('config reloaded')).toMatchObject({ level: 'info', config: cfgPath, applied: ['allow', 'log-level'], logLevel: 'info' });
    expect(await d.record('config changed; these options take effect after a restart')).toMatchObject({ level: 'warn', options: ['max-agents'] });
    expect(await d.record('allow-list reloaded')).toMatchObject({ keys: 1, file: withAgent });
    expect(await tryRegister(udpPort, agent)).toBe('registered');

    // a broken file changes nothing: still at info, the agent still allowed
    const before = d.records().length;
    writeFileSync(cfgPath, '{"allow": ');
    d.child.kill('SIGHUP');
    const failed = await d.record('config reload failed; keeping the current settings', 15_000, before);
    expect(String(failed.err)).toMatch(/hup\.json:1:\d+: JSON syntax error/);
    expect(await tryRegister(udpPort, agent)).toBe('registered');
    d.child.kill('SIGTERM');
    expect(await d.exited).toBe(0);
  });

  it('with --workers 2 the reload reaches every worker', async () => {
    const udpPort = await freeUdpPort();
    const agents = Array.from({ length: 4 }, () => generateKeyPair());
    const allowPath = file('# nobody yet\n', 'allow-workers');
    const d = new Daemon(process.execPath, [relayCli, 'serve', '--key', keyFile, '--udp', `127.0.0.1:${udpPort}`, '--http', 'off', '--workers', '2', '--allow', allowPath, '--log-format', 'json'], env());
    daemons.push(d);
    await d.record('listening');
    await d.record('worker listening'); // a worker gets the primary's SIGHUP once it has its handler
    writeFileSync(allowPath, agents.map((a) => PeerKey.fromBytes(a.publicKey).text).join('\n') + '\n');
    d.child.kill('SIGHUP');
    await d.until(() => new Set(d.records().filter((r) => r.msg === 'allow-list reloaded' && r.keys === 4).map((r) => r.worker)).size === 2, 15_000, 'both workers reloaded');
    // the kernel hands each agent's datagrams to either worker: every one must know the list
    expect(await Promise.all(agents.map((a) => tryRegister(udpPort, a)))).toEqual(agents.map(() => 'registered'));
  }, 30_000);

  it('--help, serve --help and usage errors load no server, sodium, ws, cluster or lobby module', async () => {
    const hooks = file(`import { writeSync } from 'node:fs';\nexport async function load(url, context, next) { writeSync(2, 'LOADED ' + url + '\\n'); return next(url, context); }\n`, 'hooks.mjs');
    const register = file(`import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`, 'register.mjs');
    const heavy = /\/(relay\/(server|cluster|client|cookie)\.js|noise\/|lobby\/|sodium-native\/|ws\/)/;
    for (const args of [['--help'], ['serve', '--help'], ['serve', '--kye', 'x'], ['--version']]) {
      const r = await relay(args, env(), ['--import', register]);
      const loaded = r.stderr.split('\n').filter((l) => l.startsWith('LOADED ')).map((l) => l.slice(7));
      expect(loaded.some((u) => u.endsWith('/relay/cli.js')), args.join(' ')).toBe(true);
      expect(loaded.filter((u) => heavy.test(u)), args.join(' ')).toEqual([]);
    }
    // and the server does load when serving is asked for (the hook sees it)
    const check = await relay(['serve', '--check', '--key', keyFile], env(), ['--import', register]);
    expect(check.stderr).toMatch(/LOADED .*\/lobby\//);
  });
});
