import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { mkdtempSync, writeFileSync, rmSync, mkdirSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  SessionFileError, parseSessionFile, loadSessionFile, findOwnIndex, serializeSession,
  parseRelayAddress, formatRelayAddress, mpycCommand, keyProblem,
} from '../../src/agent/session-file.js';
import { parseStrictJson } from '../../src/tools/strict-json.js';
import { runSessionCommand, type SessionCmdIO } from '../../src/agent/session-cmd.js';
import { writeKeyFile } from '../../src/common/keys.js';

const key = (n: number): string => Buffer.alloc(32, n).toString('base64');
const K1 = key(1);
const K2 = key(2);
const K3 = key(3);
const RK = key(9);
const relay = `${RK}@relay.example.org:3478/8080`;

function doc(over: Record<string, unknown> = {}): string {
  return JSON.stringify({ version: 1, basePort: 11365, relays: [relay], parties: [{ publicKey: K1, name: 'alice' }, { publicKey: K2 }, { publicKey: K3, name: 'carol' }], ...over }, null, 2);
}

function errOf(text: string): SessionFileError {
  try {
    parseSessionFile(text, 's.json');
  } catch (e) {
    expect(e).toBeInstanceOf(SessionFileError);
    return e as SessionFileError;
  }
  throw new Error('expected a SessionFileError');
}

describe('session file: valid documents', () => {
  it('parses a full document with index order and names', () => {
    const s = parseSessionFile(doc(), 's.json');
    expect(s.basePort).toBe(11365);
    expect(s.relays).toEqual([{ publicKey: RK, host: 'relay.example.org', udpPort: 3478, httpPort: 8080 }]);
    expect(s.parties).toEqual([{ index: 0, publicKey: K1, name: 'alice' }, { index: 1, publicKey: K2 }, { index: 2, publicKey: K3, name: 'carol' }]);
  });

  it('defaults basePort to 11365 and accepts relay objects and IPv6 relays', () => {
    const s = parseSessionFile(JSON.stringify({ version: 1, relays: [`${RK}@[::1]:3478/8080`, { publicKey: key(8), host: '10.0.0.1', udpPort: 3478 }], parties: [{ publicKey: K1 }, { publicKey: K2 }] }), 'x');
    expect(s.basePort).toBe(11365);
    expect(s.relays[0]).toEqual({ publicKey: RK, host: '::1', udpPort: 3478, httpPort: 8080 });
    expect(s.relays[1]).toEqual({ publicKey: key(8), host: '10.0.0.1', udpPort: 3478 });
  });

  it('round-trips through serializeSession (relays written as address strings)', () => {
    const s = parseSessionFile(doc({ basePort: 20000 }), 'a');
    const text = serializeSession(s);
    expect(JSON.parse(text).relays).toEqual([relay]);
    expect(parseSessionFile(text, 'b')).toEqual(s);
    expect(text.endsWith('\n')).toBe(true);
  });

  it('round-trips arbitrary valid sessions (property)', () => {
    const keyArb = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('base64'));
    const hostArb = fc.oneof(fc.ipV4(), fc.ipV6(), fc.domain());
    const relayArb = fc.record({ publicKey: keyArb, host: hostArb, udpPort: fc.integer({ min: 1, max: 65535 }), httpPort: fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }) })
      .map((r) => (r.httpPort === undefined ? { publicKey: r.publicKey, host: r.host, udpPort: r.udpPort } : r));
    fc.assert(fc.property(
      fc.uniqueArray(keyArb, { minLength: 3, maxLength: 8 }), fc.array(relayArb, { minLength: 1, maxLength: 3 }), fc.integer({ min: 1, max: 60000 }),
      (keys, relays, basePort) => {
        const [first, ...partyKeys] = keys;
        void first;
        fc.pre(partyKeys.length >= 2 && new Set(relays.map((r) => r.publicKey)).size === relays.length && !relays.some((r) => partyKeys.includes(r.publicKey)));
        const parties = partyKeys.map((k, i) => ({ index: i, publicKey: k, ...(i % 2 ? { name: `p${i}` } : {}) }));
        const text = serializeSession({ basePort, relays, parties });
        expect(parseSessionFile(text, 'p')).toEqual({ version: 1, basePort, relays, parties });
      }), { numRuns: 200 });
  });

  it('finds its own index by key, and says how to fix a missing key', () => {
    const s = parseSessionFile(doc(), 's.json');
    expect(findOwnIndex(s, K3)).toBe(2);
    const other = key(7);
    expect(() => findOwnIndex(s, other, 's.json')).toThrow(SessionFileError);
    expect(() => findOwnIndex(s, other, 's.json')).toThrow(`own key ${other} is not in the session file; add it with: mpyc-agent session add s.json --pubkey ${other}`);
  });

  it('prints the MPyC command with -B only when needed', () => {
    expect(mpycCommand(3, 1, 11365)).toBe('python demo.py -M3 -I 1');
    expect(mpycCommand(3, 2, 20000)).toBe('python demo.py -M3 -I 2 -B 20000');
  });
});

describe('session file: every error says what and where', () => {
  const cases: [string, string, string, RegExp][] = [
    ['JSON syntax error', '{\n  "version": 1,\n  "relays": [}\n', '', /^s\.json:3:14: JSON syntax error: unexpected "}"/],
    ['trailing comma', '{"version": 1,}', '', /s\.json:1:15: JSON syntax error: trailing comma before \}/],
    ['duplicate JSON key', '{"version": 1, "version": 1}', '', /s\.json:1:16: JSON syntax error: duplicate key "version"/],
    ['empty file', '', '', /JSON syntax error: unexpected end of file/],
    ['not an object', '[1]', '', /expected a JSON object, found an array/],
    ['unknown field', doc({ relay: 'x' }), 'relay', /relay: unknown field \(allowed: version, basePort, relays, parties\)/],
    ['missing version', JSON.stringify({ relays: [relay], parties: [{ publicKey: K1 }, { publicKey: K2 }] }), 'version', /version: missing/],
    ['future version', doc({ version: 2 }), 'version', /unsupported version 2/],
    ['basePort not integer', doc({ basePort: 11365.5 }), 'basePort', /basePort: must be an integer port 1\.\.65535/],
    ['basePort zero', doc({ basePort: 0 }), 'basePort', /must be an integer port/],
    ['basePort overflow', doc({ basePort: 65534 }), 'basePort', /basePort 65534 \+ 3 parties - 1 = 65536 exceeds 65535/],
    ['no relays', doc({ relays: [] }), 'relays', /at least one relay is required/],
    ['relays not array', doc({ relays: relay }), 'relays', /expected an array, found a string/],
    ['relay without @', doc({ relays: ['relay.example.org:3478'] }), 'relays[0]', /no '@'/],
    ['relay bad key', doc({ relays: ['abc@h:1/2'] }), 'relays[0]', /relay key: not a public key: 44 base64 characters expected, got 3/],
    ['relay no port', doc({ relays: [`${RK}@host`] }), 'relays[0]', /missing ':udpPort'/],
    ['relay port range', doc({ relays: [`${RK}@host:70000/8080`] }), 'relays[0]', /UDP port "70000" is not a port 1\.\.65535/],
    ['relay http port range', doc({ relays: [`${RK}@host:3478/0`] }), 'relays[0]', /HTTP port "0" is not a port/],
    ['relay bare IPv6', doc({ relays: [`${RK}@::1:3478/8080`] }), 'relays[0]', /empty host|must be written in brackets/],
    ['relay bare IPv6 2', doc({ relays: [`${RK}@fe80::1:3478`] }), 'relays[0]', /must be written in brackets/],
    ['relay bracket not v6', doc({ relays: [`${RK}@[1.2.3.4]:3478`] }), 'relays[0]', /in brackets is not an IPv6 address/],
    ['relay bad host', doc({ relays: [`${RK}@bad_host!:3478`] }), 'relays[0]', /bad host name/],
    ['relay bad IPv4', doc({ relays: [`${RK}@1.2.3.256:3478`] }), 'relays[0]', /bad IPv4 address/],
    ['relay object unknown field', doc({ relays: [{ publicKey: RK, host: 'h', udpPort: 1, tcp: 2 }] }), 'relays[0].tcp', /unknown field/],
    ['relay object port', doc({ relays: [{ publicKey: RK, host: 'h', udpPort: '1' }] }), 'relays[0].udpPort', /must be an integer port/],
    ['duplicate relay', doc({ relays: [relay, `${RK}@other:1`] }), 'relays[1]', /same relay key as relays\[0\]/],
    ['one party', doc({ parties: [{ publicKey: K1 }] }), 'parties', /at least 2 parties are required, found 1/],
    ['party not object', doc({ parties: [K1, { publicKey: K2 }] }), 'parties[0]', /expected an object/],
    ['party short key', doc({ parties: [{ publicKey: K1 }, { publicKey: K2 }, { publicKey: 'AAAA' }] }), 'parties[2].publicKey', /not a public key: 44 base64 characters expected, got 4/],
    ['party bad base64', doc({ parties: [{ publicKey: K1 }, { publicKey: '!' + K2.slice(1) }] }), 'parties[1].publicKey', /not 44-char base64 of 32 bytes/],
    ['party non-canonical key', doc({ parties: [{ publicKey: K1 }, { publicKey: K2.slice(0, 42) + 'B=' }] }), 'parties[1].publicKey', /non-canonical/],
    ['party missing key', doc({ parties: [{ publicKey: K1 }, { name: 'bob' }] }), 'parties[1].publicKey', /missing/],
    ['party unknown field', doc({ parties: [{ publicKey: K1 }, { publicKey: K2, port: 1 }] }), 'parties[1].port', /unknown field \(allowed: publicKey, name\)/],
    ['duplicate party key', doc({ parties: [{ publicKey: K1 }, { publicKey: K2 }, { publicKey: K1 }] }), 'parties[2].publicKey', /duplicate key: same as parties\[0\]\.publicKey/],
    ['party key is relay key', doc({ parties: [{ publicKey: K1 }, { publicKey: RK }] }), 'parties[1].publicKey', /same key as relays\[0\]/],
    ['duplicate name', doc({ parties: [{ publicKey: K1, name: 'a' }, { publicKey: K2, name: 'a' }] }), 'parties[1].name', /duplicate name "a"/],
    ['bad name', doc({ parties: [{ publicKey: K1, name: 'a\nb' }, { publicKey: K2 }] }), 'parties[0].name', /without control characters/],
  ];
  for (const [what, text, path, re] of cases) {
    it(what, () => {
      const e = errOf(text);
      expect(e.path).toBe(path);
      expect(e.message).toMatch(re);
      if (path) expect(e.message).toContain(`${path}: `);
    });
  }

  it('semantic errors carry the line and column of the offending value', () => {
    const e = errOf(doc({ parties: [{ publicKey: K1 }, { publicKey: 'AAAA' }] }));
    // doc() pretty-prints: the second party's key is on its own line
    expect(e.message).toMatch(/^s\.json:\d+:\d+: parties\[1\]\.publicKey: /);
    expect(e.position!.line).toBeGreaterThan(5);
  });

  it('never throws anything but SessionFileError on arbitrary input (property)', () => {
    fc.assert(fc.property(fc.oneof(fc.string(), fc.json(), fc.jsonValue().map((v) => JSON.stringify({ version: 1, relays: v, parties: v }))), (text) => {
      try { parseSessionFile(text, 'f'); } catch (e) { expect(e).toBeInstanceOf(SessionFileError); }
    }), { numRuns: 500 });
  });
});

describe('relay addresses and keys', () => {
  it('parse and format match the relay CLI\'s printed relayAddress', () => {
    for (const a of [relay, `${RK}@[2001:db8::1]:3478/8080`, `${RK}@1.2.3.4:3478`, `${RK}@relay.example.org:3478/https:443`, `${RK}@[2001:db8::1]:3478/https:8443`]) {
      const r = parseRelayAddress(a);
      expect(r.ok).toBe(true);
      if (r.ok) expect(formatRelayAddress(r.value)).toBe(a);
    }
  });

  it('/https:PORT marks an HTTP port that speaks TLS (the WebSocket fallback is wss://); other schemes and bad ports are refused', () => {
    expect(parseRelayAddress(`${RK}@relay.example.org:3478/https:443`)).toEqual({ ok: true, value: { publicKey: RK, host: 'relay.example.org', udpPort: 3478, httpPort: 443, tls: true } });
    expect(parseRelayAddress(`${RK}@relay.example.org:3478/8080`)).toEqual({ ok: true, value: { publicKey: RK, host: 'relay.example.org', udpPort: 3478, httpPort: 8080 } });
    expect(parseRelayAddress(`${RK}@relay.example.org:3478/http:8080`)).toMatchObject({ ok: false, error: expect.stringMatching(/HTTP port "http:8080" is not a port.*TLS is written \/https:PORT/) });
    expect(parseRelayAddress(`${RK}@relay.example.org:3478/https:0`)).toMatchObject({ ok: false, error: expect.stringMatching(/HTTPS port "0"/) });
    expect(parseRelayAddress(`${RK}@relay.example.org:3478/https:`)).toMatchObject({ ok: false });
    expect(parseRelayAddress(`${RK}@fe80::1:3478/https:443`)).toMatchObject({ ok: false, error: expect.stringMatching(/in brackets/) });
    // the object form says it with "tls": true, and only for an HTTP port
    const file = (relayObj: object): string => JSON.stringify({ version: 1, relays: [relayObj], parties: [{ publicKey: K1 }, { publicKey: K2 }] });
    expect(parseSessionFile(file({ publicKey: RK, host: 'r.example', udpPort: 3478, httpPort: 443, tls: true }), 'f').relays[0]).toMatchObject({ httpPort: 443, tls: true });
    expect(() => parseSessionFile(file({ publicKey: RK, host: 'r.example', udpPort: 3478, tls: true }), 'f')).toThrow(/tls: TLS is for the HTTP port/);
    expect(() => parseSessionFile(file({ publicKey: RK, host: 'r.example', udpPort: 3478, httpPort: 443, tls: 'yes' }), 'f')).toThrow(/tls: expected true or false/);
  });

  it('keyProblem accepts exactly canonical 32-byte keys', () => {
    expect(keyProblem(K1)).toBeNull();
    expect(keyProblem(K1.slice(0, 43))).toMatch(/got 43/);
  });

  it('strict JSON: positions and limits', () => {
    const r = parseStrictJson('{"a": [1, 2, {"b": null}]}');
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.positions.get('a[2].b')).toEqual({ line: 1, col: 20 });
    const deep = parseStrictJson('['.repeat(100) + ']'.repeat(100));
    expect(deep.ok).toBe(false);
    expect(parseStrictJson('"\u0001"').ok).toBe(false);
    expect(parseStrictJson('{"__proto__": 1}')).toMatchObject({ ok: true });
  });
});

describe('loadSessionFile', () => {
  it('reads a file and reports unreadable paths', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sess-'));
    try {
      const p = join(dir, 'session.json');
      writeFileSync(p, doc());
      expect(loadSessionFile(p).parties).toHaveLength(3);
      expect(() => loadSessionFile(join(dir, 'nope.json'))).toThrow(/nope\.json: cannot read \(ENOENT\)/);
      mkdirSync(join(dir, 'd.json'));
      expect(() => loadSessionFile(join(dir, 'd.json'))).toThrow(/not a regular file/);
    } finally { rmSync(dir, { recursive: true, force: true }); }
  });
});

describe('mpyc-agent session create/add/show', () => {
  function io(): { io: SessionCmdIO; out: () => string; err: () => string } {
    let o = '';
    let e = '';
    return { io: { out: (s) => { o += s; }, err: (s) => { e += s; } }, out: () => o, err: () => e };
  }

  it('create, add by --pubkey and --key, show; the result is a valid session file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sesscmd-'));
    try {
      const f = join(dir, 'session.json');
      let c = io();
      expect(await runSessionCommand(['create', f, '--relay', relay, '--relay', `${key(8)}@[::1]:3478`, '--base-port', '20000'], c.io)).toBe(0);
      expect(await runSessionCommand(['create', f, '--relay', relay], (c = io()).io)).toBe(3);
      expect(c.err()).toMatch(/already exists; refusing to overwrite \(use --force\)/);
      expect(await runSessionCommand(['add', f, '--pubkey', K1, '--name', 'alice'], (c = io()).io)).toBe(0);
      expect(c.out()).toMatch(/added party 0 \(alice\)/);
      const keyFile = join(dir, 'bob.key');
      const kp = writeKeyFile(keyFile);
      expect(await runSessionCommand(['add', f, '--key', keyFile, '--name', 'bob'], (c = io()).io)).toBe(0);
      expect(await runSessionCommand(['add', f, '--pubkey', K1], (c = io()).io)).toBe(3);
      expect(c.err()).toMatch(/parties\[0\]: this key is already party 0 \(alice\)/);
      expect(await runSessionCommand(['add', f, '--pubkey', K3, '--name', 'bob'], (c = io()).io)).toBe(3);
      expect(c.err()).toMatch(/parties\[2\]\.name: duplicate name "bob"/);
      const s = loadSessionFile(f);
      expect(s.basePort).toBe(20000);
      expect(s.parties.map((p) => p.publicKey)).toEqual([K1, Buffer.from(kp.publicKey).toString('base64')]);
      expect(s.relays[1]).toEqual({ publicKey: key(8), host: '::1', udpPort: 3478 });
      expect(await runSessionCommand(['show', f], (c = io()).io)).toBe(0);
      expect(c.out()).toContain('party 0  alice  ' + K1 + '  python demo.py -M2 -I 0 -B 20000');
      expect(c.out()).toContain('python demo.py -M2 -I 1 -B 20000');
      expect(c.out()).toMatch(/relay 1 \(failover\): .*@\[::1\]:3478 {2}\(no WebSocket fallback\)/);
      expect(readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]); // atomic writes leave nothing behind
    } finally { rmSync(dir, { recursive: true, force: true }); }
  });

  it('usage errors exit 2 with the usage and --help; file problems and show of an incomplete file exit 3', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sesscmd-'));
    try {
      const f = join(dir, 's.json');
      let c = io();
      expect(await runSessionCommand(['create', f], c.io)).toBe(2);
      expect(c.err()).toMatch(/at least one --relay[\s\S]*Usage: mpyc-agent session create FILE --relay ADDR[\s\S]*Try: mpyc-agent session create --help/);
      expect(await runSessionCommand(['create', f, '--relya', relay], (c = io()).io)).toBe(2);
      expect(c.err()).toMatch(/unknown option --relya \(did you mean --relay\?\)/);
      expect(await runSessionCommand(['add', f, '--pubkey'], (c = io()).io)).toBe(2);
      expect(c.err()).toMatch(/--pubkey needs a value KEY/);
      expect(await runSessionCommand(['create', f, '--relay', 'nope'], (c = io()).io)).toBe(2);
      expect(c.err()).toMatch(/--relay #1 "nope": relay address must be KEY@host/);
      expect(await runSessionCommand(['create', f, '--relay', relay, '--base-port', '70000'], (c = io()).io)).toBe(2);
      expect(await runSessionCommand(['frob'], (c = io()).io)).toBe(2);
      expect(await runSessionCommand(['add', f, '--pubkey', 'short'], (c = io()).io)).toBe(2);
      expect(c.err()).toMatch(/--pubkey: not a public key/);
      expect(await runSessionCommand(['add', f, '--pubkey', K1, '--key', 'x'], (c = io()).io)).toBe(2);
      expect(await runSessionCommand(['add', f, '--pubkey', K1], (c = io()).io)).toBe(3);
      expect(c.err()).toMatch(/s\.json: cannot read \(ENOENT\)/);
      expect(await runSessionCommand(['add', f, '--key', join(dir, 'nokey')], (c = io()).io)).toBe(3);
      expect(c.err()).toMatch(/nokey: cannot read key file \(ENOENT\); create one with: mpyc-agent keygen --out .*nokey/);
      expect(await runSessionCommand(['create', f, '--relay', relay], (c = io()).io)).toBe(0);
      expect(await runSessionCommand(['show', f], (c = io()).io)).toBe(3);
      expect(c.out()).toMatch(/incomplete: 0 parties/);
      expect(() => loadSessionFile(f)).toThrow(/parties: at least 2 parties are required, found 0/);
      for (const sub of ['create', 'add', 'show']) {
        expect(await runSessionCommand([sub, '--help'], (c = io()).io)).toBe(0);
        expect(c.out()).toContain(`mpyc-agent session ${sub}`);
      }
    } finally { rmSync(dir, { recursive: true, force: true }); }
  });
});
