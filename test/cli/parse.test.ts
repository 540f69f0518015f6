// The shared command-line helpers: our own messages for every parsing mistake, exit codes.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  EXIT, InputFileError, UsageError, exitCodeOf, expectPositionals, formatLocalTime, packageVersion, parseCommandLine, printable,
} from '../../src/common/cli.js';

const TABLE = {
  key: { kind: 'string', value: 'FILE' },
  force: { kind: 'boolean', short: 'f' },
  listen: { kind: 'list', value: 'HOST' },
  'log-level': { kind: 'string', value: 'LEVEL' },
  'relay-only': { kind: 'boolean' },
  'relay-transport': { kind: 'string' },
} as const;

const fails = (argv: string[]): string => {
  try { parseCommandLine(argv, TABLE); } catch (e) { expect(e).toBeInstanceOf(UsageError); return (e as Error).message; }
  throw new Error(`${argv.join(' ')} was accepted`);
};

describe('parseCommandLine', () => {
  it('reads strings (last wins), switches, repeated lists, inline values and positionals', () => {
    const r = parseCommandLine(['a.json', '--key', 'x', '--key=y', '-f', '--listen', '127.0.0.1', '--listen=::1', '--', '--not-an-option'], TABLE);
    expect(r.help).toBe(false);
    expect(r.values).toEqual({ key: 'y', force: true, listen: ['127.0.0.1', '::1'] });
    expect(r.positionals).toEqual(['a.json', '--not-an-option']);
  });

  it('--no-NAME turns a switch off (to override the environment or a config file), and only a switch', () => {
    expect(parseCommandLine(['--no-relay-only'], TABLE).values).toEqual({ 'relay-only': false });
    expect(fails(['--no-key'])).toBe('unknown option --no-key');
    expect(fails(['--no-force=1'])).toBe('--no-force takes no value');
  });

  it('names the option in every mistake, with the nearest known option for a typo or a prefix', () => {
    expect(fails(['--kye', 'x'])).toBe('unknown option --kye (did you mean --key?)');
    expect(fails(['--log-levl', 'debug'])).toBe('unknown option --log-levl (did you mean --log-level?)');
    expect(fails(['--relay'])).toBe('unknown option --relay (did you mean --relay-only or --relay-transport?)');
    expect(fails(['--zzzzzz'])).toBe('unknown option --zzzzzz');
    expect(fails(['-x'])).toBe('unknown option -x');
    expect(fails(['--key'])).toBe('--key needs a value FILE');
    expect(fails(['--key', '--force'])).toBe('--key needs a value FILE (found --force; write --key=--force if that is the value)');
    expect(fails(['--force=yes'])).toBe('--force takes no value (got "yes")');
    expect(fails(['--relay-transport'])).toBe('--relay-transport needs a value VALUE');
    // none of Node's own parser text
    for (const argv of [['--kye'], ['--key'], ['--force=1']]) expect(fails(argv)).not.toMatch(/ERR_PARSE_ARGS|positional argument starting with/);
  });

  it('-h/--help wins over everything before `--`, even over mistakes', () => {
    expect(parseCommandLine(['--bogus', '--help'], TABLE).help).toBe(true);
    expect(parseCommandLine(['-h', '--key'], TABLE).help).toBe(true);
    expect(parseCommandLine(['--', '--help'], TABLE)).toEqual({ help: false, values: {}, positionals: ['--help'] });
  });

  it('expectPositionals bounds the count', () => {
    expect(() => expectPositionals([], 1, 1, 'FILE')).toThrow('missing FILE');
    expect(() => expectPositionals(['a', 'b'], 1, 1, 'FILE')).toThrow('unexpected argument "b" (only FILE)');
    expect(() => expectPositionals(['a'], 0, 0, 'nothing')).toThrow('unexpected argument "a" (this command takes none)');
    expect(() => expectPositionals(['a'], 0, 1, 'FILE')).not.toThrow();
  });
});

describe('exit codes and output helpers', () => {
  it('maps error kinds to the documented codes', () => {
    expect(exitCodeOf(new UsageError('x'))).toBe(EXIT.USAGE);
    expect(exitCodeOf(new InputFileError('x'))).toBe(EXIT.BAD_FILE);
    expect(exitCodeOf(new Error('x'))).toBe(EXIT.FAILURE);
    expect(exitCodeOf('a string')).toBe(EXIT.FAILURE);
    expect(exitCodeOf(Object.assign(new Error('x'), { exitCode: 999 }))).toBe(EXIT.FAILURE);
    expect([EXIT.OK, EXIT.FAILURE, EXIT.USAGE, EXIT.BAD_FILE]).toEqual([0, 1, 2, 3]);
  });

  it('packageVersion is package.json\'s version', () => {
    const pkg = JSON.parse(readFileSync(join(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string };
    expect(packageVersion()).toBe(pkg.version);
  });

  it('printable replaces control characters; formatLocalTime is a readable local time', () => {
    expect(printable('a\x1b[2Jb\nc\u009bd')).toBe('a [2Jb c d');
    const t = new Date(2026, 0, 2, 3, 4, 5, 6).getTime();
    expect(formatLocalTime(t)).toBe('2026-01-02 03:04:05.006');
  });
});
