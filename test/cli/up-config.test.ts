// `mpyc-agent up` configuration as an operator uses it (built binary): flags > MPYC_AGENT_*
// variables > config file > defaults, clear errors, log formats, and SIGHUP reload.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRelay, type Relay } from '../relay/helpers.js';
import { PeerKey } from '../../src/common/peer-key.js';
import { freeBases } from '../../src/common/ports.js';
import { Daemon, agentCli, makeSession, runCli } from './helpers.js';
import { queryStatus } from '../../src/agent/control.js';
import { connect } from 'node:net';
import type { RelayAddress } from '../../src/agent/types.js';

let dir: string;
let relay: Relay;
let relayAddress: RelayAddress;
const daemons: Daemon[] = [];
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'up-config-'));
  relay = await startRelay();
  relayAddress = { publicKey: PeerKey.fromBytes(relay.key.publicKey).text, host: '127.0.0.1', udpPort: relay.udpPort, httpPort: relay.httpPort };
});
afterEach(async () => { for (const d of daemons.splice(0)) await d.stop(); });
afterAll(async () => {
  await relay.server.stop(false);
  rmSync(dir, { recursive: true, force: true });
});

/** environment without any MPYC_AGENT_* of the test runner's own */
function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('MPYC_AGENT_')) e[k] = v;
  return { ...e, ...extra };
}

/** `up --check` output → setting name → [JSON value, origin] */
function settings(stdout: string): Map<string, [unknown, string]> {
  const m = new Map<string, [unknown, string]>();
  for (const line of stdout.split('\n')) {
    const r = /^ {2}(\w+) +(.+) {2}\((.+)\)$/.exec(line);
    if (r) m.set(r[1]!, [JSON.parse(r[2]!), r[3]!]);
  }
  return m;
}

let seq = 0;
function configFile(obj: unknown): string {
  const f = join(dir, `config-${seq++}.json`);
  writeFileSync(f, typeof obj === 'string' ? obj : JSON.stringify(obj, null, 2));
  return f;
}

describe('mpyc-agent up: configuration', () => {
  it('each setting comes from the flag, else the variable, else the config file, else the default, and --check says which', async () => {
    const { session, keys } = makeSession(dir, 'prec', relayAddress, 2);
    const cfg = configFile({ session, 'local-base': 31000, 'log-level': 'warn', 'relay-only': true, listen: ['127.0.0.1'] });
    const vars = env({ MPYC_AGENT_CONFIG: cfg, MPYC_AGENT_KEY: keys[1]!, MPYC_AGENT_LOCAL_BASE: '32000', MPYC_AGENT_RELAY_ONLY: '0' });

    const withFlag = await runCli(['up', '--check', '--local-base', '33000'], { env: vars });
    expect(withFlag.code, withFlag.stderr).toBe(0);
    expect(withFlag.stdout).toMatch(/^mpyc-agent up: settings are valid; party 1 of 2/);
    const s = settings(withFlag.stdout);
    expect(s.get('localBase')).toEqual([33000, '--local-base']);
    expect(s.get('keyPath')).toEqual([keys[1], 'MPYC_AGENT_KEY']);
    expect(s.get('relayOnly')).toEqual([false, 'MPYC_AGENT_RELAY_ONLY']);
    expect(s.get('logLevel')![0]).toBe('warn');
    expect(s.get('logLevel')![1]).toMatch(new RegExp(`^${cfg}:\\d+:\\d+: log-level$`));
    expect(s.get('listen')![0]).toEqual(['127.0.0.1']);
    expect(s.get('sessionPath')![1]).toMatch(/: session$/);
    expect(s.get('udpPort')).toEqual([0, 'default']);
    expect(s.get('stopGraceMs')).toEqual([500, 'default']);
    expect(s.get('peerOfflineMs')).toEqual([15000, 'default']);
    expect(s.get('bind6')).toBeUndefined(); // the agent's own choice: :: with --bind 0.0.0.0

    const noFlag = settings((await runCli(['up', '--check'], { env: vars })).stdout);
    expect(noFlag.get('localBase')).toEqual([32000, 'MPYC_AGENT_LOCAL_BASE']);
    const noVar = settings((await runCli(['up', '--check'], { env: env({ MPYC_AGENT_CONFIG: cfg, MPYC_AGENT_KEY: keys[1]! }) })).stdout);
    expect(noVar.get('localBase')![0]).toBe(31000);
    expect(noVar.get('relayOnly')![0]).toBe(true);
    const noFile = settings((await runCli(['up', session, '--key', keys[0]!, '--check'], { env: env() })).stdout);
    expect(noFile.get('localBase')).toEqual([11365, 'default']); // the session file's basePort
    expect(noFile.get('relayOnly')).toEqual([false, 'default']);
    // --no-relay-only overrides the file's true
    const negated = settings((await runCli(['up', '--check', '--no-relay-only'], { env: env({ MPYC_AGENT_CONFIG: cfg, MPYC_AGENT_KEY: keys[1]! }) })).stdout);
    expect(negated.get('relayOnly')).toEqual([false, '--no-relay-only']);
  });

  it('--no-portmap, MPYC_AGENT_PORTMAP or "portmap" in the config file turn port mapping off; it is on by default', async () => {
    const { session, keys } = makeSession(dir, 'portmap', relayAddress, 2);
    const base = ['up', session, '--key', keys[0]!, '--check'];
    const cfg = configFile({ portmap: false });
    const [byDefault, byFlag, byVar, byFile, flagOverVar] = await Promise.all([
      runCli(base, { env: env() }),
      runCli([...base, '--no-portmap'], { env: env() }),
      runCli(base, { env: env({ MPYC_AGENT_PORTMAP: 'off' }) }),
      runCli(base, { env: env({ MPYC_AGENT_CONFIG: cfg }) }),
      runCli([...base, '--portmap'], { env: env({ MPYC_AGENT_PORTMAP: '0' }) }),
    ]);
    for (const r of [byDefault, byFlag, byVar, byFile, flagOverVar]) expect(r.code, r.stderr).toBe(0);
    expect(settings(byDefault.stdout).get('portMapping')).toEqual([true, 'default']);
    expect(settings(byFlag.stdout).get('portMapping')).toEqual([false, '--no-portmap']);
    expect(settings(byVar.stdout).get('portMapping')).toEqual([false, 'MPYC_AGENT_PORTMAP']);
    expect(settings(byFile.stdout).get('portMapping')).toEqual([false, `${cfg}:2:14: portmap`]);
    expect(settings(flagOverVar.stdout).get('portMapping')).toEqual([true, '--portmap']);
    const bad = await runCli(base, { env: env({ MPYC_AGENT_PORTMAP: 'maybe' }) });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^mpyc-agent: MPYC_AGENT_PORTMAP: expected 1\|true\|yes\|on or 0\|false\|no\|off, got "maybe"/);
  });

  it('bad configuration exits 2 and names the file, line and key, or the variable; a bad key or session file still exits 3', async () => {
    const { session, keys } = makeSession(dir, 'bad', relayAddress, 2);
    const unknown = configFile(`{\n  "session": ${JSON.stringify(session)},\n  "udp-prot": 5\n}\n`);
    const badValue = configFile(`{\n  "session": ${JSON.stringify(session)},\n  "udp-port": 70000\n}\n`);
    const badLevel = configFile({ session, 'log-level': 'loud' });
    const cases: [string[], NodeJS.ProcessEnv, number, RegExp][] = [
      [['up', '--config', unknown, '--key', keys[0]!], env(), 2, new RegExp(`^mpyc-agent: ${unknown}:3:15: udp-prot: unknown option \\(known: session, key, `)],
      [['up', '--config', badValue, '--key', keys[0]!], env(), 2, new RegExp(`^mpyc-agent: ${badValue}:3:15: udp-port: must be an integer in 0\\.\\.65535, got "70000"`)],
      [['up', '--key', keys[0]!], env({ MPYC_AGENT_CONFIG: badLevel }), 2, /: log-level: unknown level "loud" \(fatal, error, warn, info, debug, trace, silent\)/],
      [['up', session, '--key', keys[0]!], env({ MPYC_AGENT_UDP_PORT: 'x' }), 2, /^mpyc-agent: MPYC_AGENT_UDP_PORT: must be an integer in 0\.\.65535, got "x"/],
      [['up', session, '--key', keys[0]!], env({ MPYC_AGENT_UDP_PROT: '5' }), 2, /^mpyc-agent: MPYC_AGENT_UDP_PROT: unknown variable/],
      [['up', session, '--key', keys[0]!], env({ MPYC_AGENT_RELAY_ONLY: 'perhaps' }), 2, /MPYC_AGENT_RELAY_ONLY: expected 1\|true\|yes\|on or 0\|false\|no\|off/],
      [['up', '--config', join(dir, 'none.json')], env(), 2, /none\.json: cannot read config file \(ENOENT\)/],
      [['up', '--key', keys[0]!], env(), 2, /missing SESSION/],
      [['up', session, '--session', session], env(), 2, /give the session file once/],
      [['up', session, '--key', keys[0]!, '--metrics', 'localhost'], env(), 2, /--metrics: expected HOST:PORT/],
      [['up', session, '--key', keys[0]!, '--listen', '0.0.0.0'], env(), 2, /--listen: wants a loopback address \(127\.x\.x\.x or ::1\), got "0\.0\.0\.0"/],
      [['up', session, '--key', join(dir, 'nokey')], env(), 3, /nokey: cannot read key file \(ENOENT\); create one with: mpyc-agent keygen --out/],
      [['up', '--key', keys[0]!], env({ MPYC_AGENT_SESSION: join(dir, 'nosession.json') }), 3, /nosession\.json: cannot read \(ENOENT\)/],
    ];
    const results = await Promise.all(cases.map(([args, e]) => runCli(args, { env: e })));
    results.forEach((r, i) => {
      const [args, , code, re] = cases[i]!;
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(code);
      expect(r.stderr, args.join(' ')).toMatch(re);
    });
  });

  it('logs JSON lines to a pipe, human lines with --log-format human or on a terminal; the MPyC line goes to stdout', async () => {
    const { session, keys } = makeSession(dir, 'fmt', relayAddress, 2);
    const [b0, b1, b2] = await freeBases(3, 2);
    const json = Daemon.agent(['up', session, '--key', keys[0]!, '--bind', '127.0.0.1', '--local-base', String(b0), '--control', join(dir, 'fmt0.sock')], env());
    daemons.push(json);
    const ready = await json.record('ready');
    expect(ready).toMatchObject({ level: 'info', service: 'mpyc-agent', party: 0 });
    expect(typeof ready.time).toBe('number');
    await json.until(() => json.out.length >= 2, 5000, 'the MPyC line on stdout');
    expect(json.out.join('\n')).toContain(`run MPyC as:\n  python demo.py -M2 -I 0 -B ${b0}`);
    expect(json.err.every((l) => l.startsWith('{'))).toBe(true);

    const human = Daemon.agent(['up', session, '--key', keys[1]!, '--bind', '127.0.0.1', '--local-base', String(b1), '--control', join(dir, 'fmt1.sock'), '--log-format', 'human'], env());
    daemons.push(human);
    const line = await human.until(() => human.err.find((l) => / INFO {2}ready /.test(l)), 15_000, 'human ready line');
    expect(line).toMatch(new RegExp(`^\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\.\\d{3} INFO  ready party=1 mpycCommand="python demo\\.py -M2 -I 1 -B ${b1}" control=`));
    expect(human.err.some((l) => l.startsWith('{'))).toBe(false);

    // on a terminal (script(1) gives the agent a pty) the default is human, and the
    // terminal going away (SIGHUP) stops the agent instead of leaving it detached
    const command = [process.execPath, agentCli, 'up', session, '--key', keys[0]!, '--bind', '127.0.0.1', '--local-base', String(b2), '--control', join(dir, 'fmt2.sock')];
    const tty = new Daemon('script', ['-qfec', command.map((a) => `'${a}'`).join(' '), '/dev/null'], env());
    daemons.push(tty);
    await tty.until(() => tty.out.find((l) => / INFO {2}ready party=0 /.test(l)), 15_000, 'human ready line on a terminal');
    expect(tty.out.some((l) => l.includes('"msg":'))).toBe(false);
    const agentPid = Number(readFileSync(`/proc/${tty.child.pid}/task/${tty.child.pid}/children`, 'utf8').trim().split(/\s+/)[0]);
    expect(agentPid).toBeGreaterThan(0);
    tty.child.kill('SIGKILL'); // the pty closes: the kernel sends SIGHUP to the agent
    const alive = (): boolean => { try { process.kill(agentPid, 0); return true; } catch { return false; } };
    const deadline = Date.now() + 10_000;
    while (alive() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    if (alive()) process.kill(agentPid, 'SIGKILL');
    expect(alive()).toBe(false);
  });

  it('SIGHUP re-reads the config file: the log level applies at once, other changes are logged as needing a restart, a bad file changes nothing', async () => {
    const { session, keys } = makeSession(dir, 'hup', relayAddress, 2);
    const [base] = await freeBases(1, 2);
    const cfgPath = join(dir, 'hup-config.json');
    const cfg = (extra: Record<string, unknown>): string => JSON.stringify({ session, key: keys[0], bind: '127.0.0.1', 'local-base': base, ...extra });
    writeFileSync(cfgPath, cfg({ 'log-level': 'warn' }));
    const control = join(dir, 'hup.sock');
    const d = Daemon.agent(['up', '--config', cfgPath, '--control', control], env());
    daemons.push(d);
    await d.until(() => d.out.find((l) => l.includes('python demo.py')), 15_000, 'MPyC line');
    expect(d.records().filter((r) => r.level === 'info')).toEqual([]); // warn level: no info lines

    writeFileSync(cfgPath, cfg({ 'log-level': 'info', 'udp-port': 40999 }));
    d.child.kill('SIGHUP');
    const reloaded = await d.record('config reloaded');
    // an info line, so the new level is in force
    expect(reloaded).toMatchObject({ level: 'info', config: cfgPath, applied: ['log-level'] });
    expect(await d.record('config changed; these options take effect after a restart')).toMatchObject({ level: 'warn', options: ['udp-port'] });

    const before = d.records().length;
    writeFileSync(cfgPath, '{"log-level": "debug",');
    d.child.kill('SIGHUP');
    const failed = await d.record('config reload failed; keeping the current settings', 15_000, before);
    expect(String(failed.err)).toMatch(/hup-config\.json:1:\d+: JSON syntax error/);
    const st = execFileSync(process.execPath, [agentCli, 'status', '--json', '--control', control], { encoding: 'utf8' });
    expect(JSON.parse(st).ownIndex).toBe(0); // still serving after a bad reload
    expect(d.records().slice(before).some((r) => r.level === 'debug')).toBe(false); // and still at info

    writeFileSync(cfgPath, cfg({ 'log-level': 'info', 'log-format': 'human' }));
    d.child.kill('SIGHUP');
    await d.until(() => d.err.find((l) => / INFO {2}config reloaded /.test(l)), 15_000, 'human reload line');
    d.child.kill('SIGTERM');
    expect(await d.exited).toBe(0);
  });
  it('the lifecycle options from every source, in seconds: --stop-grace, --peer-offline, --offline-close, --bind6', async () => {
    const { session, keys } = makeSession(dir, 'life', relayAddress, 2);
    const cfg = configFile({ session, key: keys[0], 'peer-offline': 20, 'offline-close': '0', bind6: 'none' });
    const r = await runCli(['up', '--check', '--stop-grace', '2.5'], { env: env({ MPYC_AGENT_CONFIG: cfg, MPYC_AGENT_PEER_OFFLINE: '12.5' }) });
    expect(r.code, r.stderr).toBe(0);
    const s = settings(r.stdout);
    expect(s.get('stopGraceMs')).toEqual([2500, '--stop-grace']);
    expect(s.get('peerOfflineMs')).toEqual([12500, 'MPYC_AGENT_PEER_OFFLINE']);
    expect(s.get('offlineCloseMs')![0]).toBe(0);
    expect(s.get('offlineCloseMs')![1]).toMatch(/: offline-close$/);
    expect(s.get('bind6')![0]).toBe(null);
    const bad = await runCli(['up', '--check'], { env: env({ MPYC_AGENT_CONFIG: configFile({ session, key: keys[0], 'stop-grace': 'soon' }) }) });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/config-\d+\.json:\d+:\d+: stop-grace must be a number of seconds in 0\.\.30, got "soon"/);
  });

  it('SIGTERM with data in flight to a peer that stopped answering: the agent waits --stop-grace for it, then exits (0 s: at once)', async () => {
    const { session, keys } = makeSession(dir, 'grace', relayAddress, 2);
    const [ba, ba2, bb] = await freeBases(3, 2);
    const peer = Daemon.agent(['up', session, '--key', keys[1]!, '--bind', '127.0.0.1', '--local-base', String(bb), '--control', join(dir, 'grace-b.sock')], env());
    daemons.push(peer);
    await peer.record('ready');
    /** SIGTERM to an agent whose peer (frozen) acknowledges nothing of what it sends: ms to its exit */
    const stopWithDataInFlight = async (grace: string, base: number, name: string): Promise<number> => {
      const control = join(dir, `${name}.sock`);
      const a = Daemon.agent(['up', session, '--key', keys[0]!, '--bind', '127.0.0.1', '--local-base', String(base), '--control', control, '--stop-grace', grace], env());
      daemons.push(a);
      await a.record('ready');
      for (let t = Date.now(); (await queryStatus(control)).peers[0]!.state === 'connecting'; ) {
        if (Date.now() - t > 15_000) throw new Error('no session with the peer');
        await new Promise((r) => setTimeout(r, 100));
      }
      peer.child.kill('SIGSTOP');
      try {
        const local = connect({ host: '127.0.0.1', port: base + 1 });
        local.on('error', () => undefined);
        await new Promise<void>((r) => local.once('connect', () => r()));
        local.write(Buffer.alloc(1 << 20, 1));
        await new Promise((r) => setTimeout(r, 300)); // the first flight leaves, unacknowledged
        const t0 = Date.now();
        a.child.kill('SIGTERM');
        expect(await a.exited).toBe(0);
        local.destroy();
        return Date.now() - t0;
      } finally {
        peer.child.kill('SIGCONT');
      }
    };
    const patient = await stopWithDataInFlight('2', ba, 'grace-a');
    const prompt = await stopWithDataInFlight('0', ba2, 'grace-a0');
    expect(patient).toBeGreaterThanOrEqual(1900); // it waited for the data
    expect(patient).toBeLessThan(2000 + 3000); // and no more than the grace and its bounded close
    expect(prompt).toBeLessThan(patient - 1000);
  }, 60_000);
});
