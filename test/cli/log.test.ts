// The daemons' logger: human lines on a terminal, JSON lines otherwise, level and format changeable at run time.
import { describe, expect, it } from 'vitest';
import { createLogger, defaultLogFormat, humanLine, parseLogFormat, parseLogLevel } from '../../src/common/log.js';

function capture(format: 'human' | 'json', level: 'info' | 'warn' | 'debug' = 'info') {
  const lines: string[] = [];
  const log = createLogger({ service: 'mpyc-test', level, format, bindings: { party: 1 }, sink: (l) => lines.push(l) });
  return { log, lines };
}

const HUMAN_RE = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} (INFO |WARN |ERROR|DEBUG|TRACE|FATAL) /;

describe('logger', () => {
  it('human: local time, level word, message, key=value fields; no epoch numbers, no JSON', () => {
    const { log, lines } = capture('human');
    log.logger.child({ peer: 2 }).info({ from: 'relay udp', to: 'direct', rttMs: 1.5, ok: true, empty: '' }, 'path change');
    expect(lines).toHaveLength(1);
    const line = lines[0]!;
    expect(line).toMatch(HUMAN_RE);
    expect(line.slice(24)).toBe('INFO  path change party=1 peer=2 from="relay udp" to=direct rttMs=1.5 ok=true empty=""\n');
    expect(line).not.toMatch(/\d{13}/); // no epoch milliseconds
    expect(line).not.toContain('mpyc-test'); // the service is obvious on a terminal
  });

  it('human: control characters from peers cannot reach the terminal; errors show their stack indented', () => {
    const { log, lines } = capture('human');
    log.logger.warn({ name: 'bob\x1b[2J', nested: { a: 'x\ny' } }, 'odd\nmessage');
    expect(lines[0]).not.toMatch(/[\x00-\x09\x0b-\x1f]/); // eslint-disable-line no-control-regex
    expect(lines[0]!.split('\n')).toHaveLength(2); // one line plus the final newline
    expect(lines[0]).toContain('WARN  odd message party=1 name="bob\\u001b[2J" nested={"a":"x\\ny"}');
    log.logger.error({ err: new Error('boom') }, 'failed');
    const [first, ...stack] = lines[1]!.trimEnd().split('\n');
    expect(first).toMatch(/ERROR failed party=1 err=boom$/);
    expect(stack.length).toBeGreaterThan(0);
    expect(stack.every((l) => l.startsWith('    at '))).toBe(true);
  });

  it('json: one object per line with the level as a word, time in ms since the epoch, service and bindings', () => {
    const { log, lines } = capture('json');
    const before = Date.now();
    log.logger.child({ peer: 0 }).warn({ reason: 'probe timeout' }, 'path change');
    const rec = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(rec).toMatchObject({ level: 'warn', service: 'mpyc-test', party: 1, peer: 0, reason: 'probe timeout', msg: 'path change' });
    expect(rec.time).toBeGreaterThanOrEqual(before);
    expect(lines[0]).toContain('"msg":"path change"'); // tests and tools grep for this spelling
    expect(lines[0]!.endsWith('\n')).toBe(true);
  });

  it('setLevel applies at once, also to child loggers made before; setFormat switches the line format', () => {
    const { log, lines } = capture('json', 'warn');
    const child = log.logger.child({ peer: 3 });
    child.info('hidden');
    expect(lines).toHaveLength(0);
    log.setLevel('debug');
    child.debug('shown');
    expect(JSON.parse(lines[0]!).msg).toBe('shown');
    log.setFormat('human');
    expect(log.format).toBe('human');
    child.info('now human');
    expect(lines[1]).toMatch(HUMAN_RE);
    log.setLevel('error');
    child.warn('hidden again');
    expect(lines).toHaveLength(2);
  });

  it('format and level words; the default format follows whether stderr is a terminal', () => {
    expect(parseLogLevel('debug')).toBe('debug');
    expect(parseLogLevel('verbose')).toBeNull();
    expect(parseLogFormat('json')).toBe('json');
    expect(parseLogFormat('pretty')).toBeNull();
    expect(defaultLogFormat({ isTTY: true })).toBe('human');
    expect(defaultLogFormat({ isTTY: false })).toBe('json');
    expect(defaultLogFormat({})).toBe('json');
    expect(humanLine('not json\n')).toBe('not json\n');
  });
});
