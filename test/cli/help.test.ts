// mpyc-agent's help, version and usage errors as users meet them (the built dist/ binary).
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { runCli } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'cli-help-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const run = (args: string[]): ReturnType<typeof runCli> => runCli(args);

// An ESM resolve hook that records every module a run loads, to check that --help loads no command.
const hooks = join(dir, 'hooks.mjs');
writeFileSync(hooks, `import { appendFileSync } from 'node:fs';
let file;
export function initialize(data) { file = data.file; }
export async function resolve(specifier, context, next) { const r = await next(specifier, context); appendFileSync(file, r.url + '\\n'); return r; }
`);
const register = join(dir, 'register.mjs');
writeFileSync(register, `import { register } from 'node:module';
register(${JSON.stringify(pathToFileURL(hooks).href)}, { data: { file: process.env.TRACE_FILE } });
`);
let traces = 0;
async function modulesLoaded(args: string[]): Promise<string[]> {
  const file = join(dir, `trace-${traces++}.txt`);
  writeFileSync(file, '');
  const r = await runCli(args, { nodeArgs: ['--import', register], env: { ...process.env, TRACE_FILE: file } });
  expect(r.code).toBe(0);
  return readFileSync(file, 'utf8').split('\n').filter(Boolean);
}

describe('mpyc-agent help, version and usage errors', () => {
  it('--help lists every command, the log streams and the exit codes; help COMMAND = COMMAND --help', async () => {
    const top = await run(['--help']);
    expect(top.code).toBe(0);
    for (const cmd of ['keygen', 'pubkey', 'session', 'invite', 'join', 'up', 'status', 'ping', 'netcheck']) expect(top.stdout).toContain(`mpyc-agent ${cmd}`);
    expect(top.stdout).toMatch(/Exit codes[\s\S]*0 +success[\s\S]*1 +failure at run time[\s\S]*2 +bad command line or configuration[\s\S]*3 +unusable key or session file/);
    expect(top.stdout).toMatch(/stderr/);
    expect(top.stderr).toBe('');
    for (const cmd of ['up', 'status', 'keygen', 'ping', 'netcheck']) {
      const [a, b] = await Promise.all([run(['help', cmd]), run([cmd, '--help'])]);
      expect(a.code).toBe(0);
      expect(a.stdout).toBe(b.stdout);
      expect(a.stdout).toMatch(new RegExp(`^mpyc-agent ${cmd}`));
      expect(a.stdout).toContain('Exit codes');
    }
    const up = await run(['up', '--help']);
    for (const opt of ['--config', '--log-format', '--check', 'MPYC_AGENT_', 'SIGHUP', 'flags > environment > config file > defaults', '/healthz',
      '--bind6', '--stop-grace', '--peer-offline', '--offline-close', '--no-portmap']) expect(up.stdout).toContain(opt);
    // what port mapping asks of whom, and that it is undone
    expect(up.stdout).toMatch(/--no-portmap +do not ask the router for a port mapping\.[^]*default gateway \(PCP, then NAT-PMP\)[^]*UPnP-IGD[^]*deleted when it stops/);
    const ping = await run(['ping', '--help']);
    for (const opt of ['PARTY', '--count', '--interval', '--json', '--control', '--key']) expect(ping.stdout).toContain(opt);
    const netcheck = await run(['netcheck', '--help']);
    for (const opt of ['SESSION', '--relay', '--json', 'HTTPS_PROXY', 'OTHER-ADDRESS', 'endpoint-independent']) expect(netcheck.stdout).toContain(opt);
    const none = await run([]);
    expect(none.code).toBe(2);
    expect(none.stdout).toContain('Usage:');
  });

  it('--version prints package.json\'s version', async () => {
    const pkg = JSON.parse(readFileSync(join(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string };
    const r = await run(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`mpyc-agent ${pkg.version}\n`);
  });

  it('--help and --version load no command module and no dependency; up --help loads neither the agent nor ws/prom-client', async () => {
    for (const args of [['--help'], ['--version']]) {
      const loaded = await modulesLoaded(args);
      expect(loaded.some((u) => u.endsWith('/dist/src/common/cli.js'))).toBe(true); // the trace works
      expect(loaded.filter((u) => u.includes('/node_modules/') || /\/agent\/(up|agent|status-cmd|session-cmd|control)\.js$/.test(u))).toEqual([]);
    }
    for (const cmd of ['up', 'ping', 'netcheck']) {
      const loaded = await modulesLoaded([cmd, '--help']);
      expect(loaded.some((u) => u.endsWith(`/dist/src/agent/${cmd}${cmd === 'up' ? '' : '-cmd'}.js`))).toBe(true);
      expect(loaded.filter((u) => /\/agent\/(agent|netcheck)\.js$|\/node_modules\/(ws|prom-client)\//.test(u))).toEqual([]);
    }
  });

  it('unknown options and missing values: our message naming the option, the command\'s usage, exit 2', async () => {
    const cases: [string[], RegExp][] = [
      [['up', '--kye', 'x'], /^mpyc-agent: unknown option --kye \(did you mean --key\?\)\nUsage: mpyc-agent up \[SESSION\].*\nTry: mpyc-agent up --help\n$/],
      [['up', 's.json', '--key'], /^mpyc-agent: --key needs a value FILE\nUsage: mpyc-agent up /],
      [['status', '--jsn'], /^mpyc-agent: unknown option --jsn \(did you mean --json\?\)\nUsage: mpyc-agent status /],
      [['status', '--interval', '1'], /^mpyc-agent: --interval goes with --watch\nUsage: mpyc-agent status /],
      [['status', '--watch', '--interval', '0'], /--interval must be a number of seconds in 0\.1\.\.3600, got "0"/],
      [['keygen', '--force=1'], /^mpyc-agent: --force takes no value \(got "1"\)\nUsage: mpyc-agent keygen /],
      [['pubkey', 'extra'], /^mpyc-agent: unexpected argument "extra" \(this command takes none\)\nUsage: mpyc-agent pubkey/],
      [['session', 'show'], /^mpyc-agent session: missing FILE\nUsage: mpyc-agent session show FILE/],
      [['frobnicate'], /^mpyc-agent: unknown command "frobnicate" \(commands: keygen, pubkey, session, invite, join, up, status, ping, netcheck\)\nTry: mpyc-agent --help\n$/],
      [['ping'], /^mpyc-agent: missing one PARTY \(an index or a name\)\nUsage: mpyc-agent ping PARTY /],
      [['ping', '1', '--count', '0'], /^mpyc-agent: --count must be an integer in 1\.\.1000, got "0"\nUsage: mpyc-agent ping /],
      [['ping', '1', '--interval', '0.001'], /^mpyc-agent: --interval must be a number of seconds in 0\.01\.\.10, got "0\.001"/],
      [['ping', '1', '--control', 'a', '--key', 'b'], /give --control PATH or --key FILE, not both/],
      [['netcheck'], /^mpyc-agent: missing SESSION or --relay ADDR \(the relays to check\)\nUsage: mpyc-agent netcheck /],
      [['netcheck', 's.json', '--relay', 'x'], /^mpyc-agent: give SESSION or --relay ADDR, not both/],
      [['netcheck', '--relay', 'nokey@host:1'], /^mpyc-agent: --relay "nokey@host:1": relay key: /],
      [['up', 's.json', '--stop-grace', '31'], /^mpyc-agent: --stop-grace must be a number of seconds in 0\.\.30, got "31"/],
      [['up', 's.json', '--peer-offline', '5'], /^mpyc-agent: --peer-offline must be a number of seconds in 10\.\.3600, got "5"/],
      [['up', 's.json', '--offline-close', '-1'], /^mpyc-agent: --offline-close needs a value SECONDS/],
      [['up', 's.json', '--bind6', '127.0.0.1'], /^mpyc-agent: --bind6: wants an IPv6 address or none, got "127\.0\.0\.1"/],
      // invite and join print usage errors in the shared style (they had Node's parser text)
      [['join', '--nme', 'x'], /^mpyc-agent join: unknown option --nme \(did you mean --name\?\)\nUsage: mpyc-agent join INVITE .*\nTry: mpyc-agent join --help\n$/],
      [['invite', 'create', '--relay'], /^mpyc-agent invite: --relay needs a value ADDR\nUsage: mpyc-agent invite create .*\nTry: mpyc-agent invite create --help\n$/],
      [['invite', 'create', '--parties', '2', '--qr=1'], /^mpyc-agent invite: --qr takes no value \(got "1"\)\n/],
      [['--verbose'], /^mpyc-agent: unknown option --verbose \(options come after the command\)/],
    ];
    const results = await Promise.all(cases.map(([args]) => run(args)));
    results.forEach((r, i) => {
      expect(r.code, cases[i]![0].join(' ')).toBe(2);
      expect(r.stderr, cases[i]![0].join(' ')).toMatch(cases[i]![1]);
      expect(r.stderr).not.toMatch(/ERR_PARSE_ARGS|TypeError|    at /);
    });
  });
});
