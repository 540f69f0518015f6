// Daemon configuration: flags > environment > config file > defaults, and clear errors.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, MAX_CONFIG_BYTES, envName, loadConfig } from '../../src/common/config.js';
import { UsageError, exitCodeOf } from '../../src/common/cli.js';

const TABLE = {
  key: { kind: 'string' },
  'udp-port': { kind: 'string' },
  'relay-only': { kind: 'boolean' },
  listen: { kind: 'list' },
} as const;
const P = 'MPYC_TEST';
const dir = mkdtempSync(join(tmpdir(), 'config-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function file(text: string): string {
  const f = join(dir, `c${n++}.json`);
  writeFileSync(f, text);
  return f;
}
const errorOf = (fn: () => unknown): ConfigError => {
  try { fn(); } catch (e) { expect(e).toBeInstanceOf(ConfigError); return e as ConfigError; }
  throw new Error('accepted');
};

describe('loadConfig', () => {
  it('takes each option from the first place that sets it: flag, then environment, then file', () => {
    const f = file('{\n  "key": "file.key",\n  "udp-port": 4000,\n  "relay-only": true,\n  "listen": ["::1", "127.0.0.1"]\n}\n');
    const all = loadConfig(TABLE, { flags: {}, configFlag: f, env: {}, envPrefix: P });
    expect([all.get('key'), all.get('udp-port'), all.get('relay-only'), all.get('listen')]).toEqual(['file.key', '4000', true, ['::1', '127.0.0.1']]);
    expect(all.origin('key')).toBe(`${f}:2:10: key`);
    expect(all.origin('listen')).toBe(`${f}:5:13: listen`);
    expect(all.filePath).toBe(f);

    const env = { MPYC_TEST_KEY: 'env.key', MPYC_TEST_RELAY_ONLY: 'no', MPYC_TEST_LISTEN: '10.0.0.1, 10.0.0.2', MPYC_TEST_UDP_PORT: '' };
    const withEnv = loadConfig(TABLE, { flags: {}, configFlag: f, env, envPrefix: P });
    expect([withEnv.get('key'), withEnv.get('udp-port'), withEnv.get('relay-only'), withEnv.get('listen')]).toEqual(['env.key', '4000', false, ['10.0.0.1', '10.0.0.2']]);
    expect(withEnv.origin('key')).toBe('MPYC_TEST_KEY');
    expect(withEnv.origin('udp-port')).toBe(`${f}:3:15: udp-port`); // an empty variable is unset

    const withFlags = loadConfig(TABLE, { flags: { key: 'flag.key', 'relay-only': true, listen: ['::'] }, configFlag: f, env, envPrefix: P });
    expect([withFlags.get('key'), withFlags.get('relay-only'), withFlags.get('listen')]).toEqual(['flag.key', true, ['::']]);
    expect(withFlags.origin('key')).toBe('--key');

    const none = loadConfig(TABLE, { flags: {}, env: {}, envPrefix: P });
    expect(none.get('key')).toBeUndefined();
    expect(none.origin('key')).toBe('default');
    expect(none.filePath).toBeUndefined();
  });

  it('finds the file by PREFIX_CONFIG when --config is not given; --config wins', () => {
    const a = file('{"key": "a"}');
    const b = file('{"key": "b"}');
    expect(loadConfig(TABLE, { flags: {}, env: { MPYC_TEST_CONFIG: a }, envPrefix: P }).get('key')).toBe('a');
    expect(loadConfig(TABLE, { flags: {}, configFlag: b, env: { MPYC_TEST_CONFIG: a }, envPrefix: P }).get('key')).toBe('b');
  });

  it('refuses unknown keys and variables and values of the wrong kind, naming file:line:col and key, or the variable', () => {
    const typo = file('{\n  "kye": "x"\n}');
    expect(errorOf(() => loadConfig(TABLE, { flags: {}, configFlag: typo, env: {}, envPrefix: P })).message)
      .toBe(`${typo}:2:10: kye: unknown option (known: key, udp-port, relay-only, listen)`);
    const cases: [string, RegExp][] = [
      ['{"relay-only": "yes"}', /:1:16: relay-only: expected true or false, found string "yes"$/],
      ['{"key": true}', /:1:9: key: expected a string or a number, found boolean true$/],
      ['{"listen": ["::1", {}]}', /:1:12: listen\[1\]: expected strings or numbers, found an object$/],
      ['{"key": null}', /key: expected a string or a number, found null$/],
      ['{"key": "a", "key": "b"}', /:1:14: JSON syntax error: duplicate key "key"$/],
      ['{"key": "a",}', /:1:13: JSON syntax error: trailing comma/],
      ['["key"]', /: expected a JSON object \{"option": value, \.\.\.\}, found an array$/],
    ];
    for (const [text, re] of cases) expect(errorOf(() => loadConfig(TABLE, { flags: {}, configFlag: file(text), env: {}, envPrefix: P })).message).toMatch(re);
    expect(errorOf(() => loadConfig(TABLE, { flags: {}, configFlag: join(dir, 'none.json'), env: {}, envPrefix: P })).message)
      .toMatch(/none\.json: cannot read config file \(ENOENT\)/);
    expect(errorOf(() => loadConfig(TABLE, { flags: {}, configFlag: dir, env: {}, envPrefix: P })).message).toMatch(/not a regular file/);
    expect(errorOf(() => loadConfig(TABLE, { flags: {}, configFlag: file(' '.repeat(MAX_CONFIG_BYTES + 1)), env: {}, envPrefix: P })).message).toMatch(/larger than/);
    expect(errorOf(() => loadConfig(TABLE, { flags: {}, env: { MPYC_TEST_UDP_PRT: '1' }, envPrefix: P })).message)
      .toMatch(/^MPYC_TEST_UDP_PRT: unknown variable \(known: MPYC_TEST_KEY, MPYC_TEST_UDP_PORT, .*MPYC_TEST_CONFIG\)$/);
    expect(errorOf(() => loadConfig(TABLE, { flags: {}, env: { MPYC_TEST_RELAY_ONLY: 'maybe' }, envPrefix: P })).message)
      .toBe('MPYC_TEST_RELAY_ONLY: expected 1|true|yes|on or 0|false|no|off, got "maybe"');
    // other programs' variables are none of our business
    expect(() => loadConfig(TABLE, { flags: {}, env: { MPYC_TESTER: '1', OTHER_KEY: 'x' }, envPrefix: P })).not.toThrow();
    expect(new ConfigError('x')).toBeInstanceOf(UsageError);
    expect(exitCodeOf(new ConfigError('x'))).toBe(2);
  });

  it('changedKeys lists what a reload of the same sources changed', () => {
    const f = join(dir, 'reload.json');
    writeFileSync(f, '{"key": "a", "listen": ["::1"]}');
    const src = { flags: { 'udp-port': '5' }, configFlag: f, env: {}, envPrefix: P };
    const before = loadConfig(TABLE, src);
    writeFileSync(f, '{"key": "b", "listen": ["::1"], "udp-port": 9, "relay-only": true}');
    const after = loadConfig(TABLE, src);
    expect(before.changedKeys(after)).toEqual(['key', 'relay-only']); // udp-port: the flag still wins
    expect(after.changedKeys(loadConfig(TABLE, src))).toEqual([]);
  });

  it('envName spells the variable of an option', () => {
    expect(envName('MPYC_AGENT', 'log-level')).toBe('MPYC_AGENT_LOG_LEVEL');
  });
});
