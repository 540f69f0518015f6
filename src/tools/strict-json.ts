// A small strict JSON parser for hand-edited config files. JSON.parse is not enough here:
// it silently keeps the last of two equal keys (a session file with two "parties" would
// lose one), and its errors often carry no position. This parser follows RFC 8259,
// rejects duplicate keys, and reports every error — and every value — by line and column.
// It never throws: the result says what went wrong and where.

export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
export interface JsonObject { [key: string]: JsonValue }

export interface Position { line: number; col: number }

export type JsonResult =
  | { ok: true; value: JsonValue; /** JSON path (e.g. `parties[2].name`, '' for the root) → where its value starts */ positions: Map<string, Position> }
  | { ok: false; message: string; line: number; col: number };

const MAX_DEPTH = 64;

class Fail { constructor(readonly message: string, readonly offset: number) {} }

export function parseStrictJson(text: string): JsonResult {
  const positions = new Map<string, Position>();
  let i = 0;
  const lineStarts = [0];
  for (let k = 0; k < text.length; k++) if (text.charCodeAt(k) === 10) lineStarts.push(k + 1);
  const posOf = (off: number): Position => {
    let lo = 0;
    let hi = lineStarts.length - 1;
    while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (lineStarts[mid]! <= off) lo = mid; else hi = mid - 1; }
    return { line: lo + 1, col: off - lineStarts[lo]! + 1 };
  };
  const ws = (): void => { while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++; };
  const what = (): string => (i >= text.length ? 'end of file' : `${JSON.stringify(text[i])}`);

  const str = (): string => {
    const start = i;
    i++; // opening quote
    let out = '';
    for (;;) {
      if (i >= text.length) throw new Fail('unterminated string', start);
      const c = text.charCodeAt(i);
      if (c === 0x22) { i++; return out; }
      if (c < 0x20) throw new Fail('control character in string (write it as an escape)', i);
      if (c === 0x5c) {
        const e = text[i + 1];
        const simple: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
        if (e !== undefined && e in simple) { out += simple[e]; i += 2; continue; }
        if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) { out += String.fromCharCode(parseInt(text.slice(i + 2, i + 6), 16)); i += 6; continue; }
        throw new Fail('invalid escape in string', i);
      }
      out += text[i];
      i++;
    }
  };

  const num = (): number => {
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(i, i + 400));
    if (!m) throw new Fail(`unexpected ${what()}`, i);
    i += m[0].length;
    return Number(m[0]);
  };

  const value = (path: string, depth: number): JsonValue => {
    ws();
    if (depth > MAX_DEPTH) throw new Fail(`nesting deeper than ${MAX_DEPTH}`, i);
    positions.set(path, posOf(i));
    const c = text[i];
    if (c === '{') {
      i++;
      const obj: JsonObject = Object.create(null) as JsonObject;
      ws();
      if (text[i] === '}') { i++; return obj; }
      for (;;) {
        ws();
        if (text[i] !== '"') throw new Fail(`expected a "quoted" key, found ${what()}`, i);
        const keyAt = i;
        const key = str();
        if (Object.prototype.hasOwnProperty.call(obj, key)) throw new Fail(`duplicate key ${JSON.stringify(key)}`, keyAt);
        ws();
        if (text[i] !== ':') throw new Fail(`expected ':' after key ${JSON.stringify(key)}, found ${what()}`, i);
        i++;
        obj[key] = value(path === '' ? key : `${path}.${key}`, depth + 1);
        ws();
        if (text[i] === ',') { i++; ws(); if (text[i] === '}') throw new Fail('trailing comma before }', i); continue; }
        if (text[i] === '}') { i++; return obj; }
        throw new Fail(`expected ',' or '}', found ${what()}`, i);
      }
    }
    if (c === '[') {
      i++;
      const arr: JsonValue[] = [];
      ws();
      if (text[i] === ']') { i++; return arr; }
      for (;;) {
        arr.push(value(`${path}[${arr.length}]`, depth + 1));
        ws();
        if (text[i] === ',') { i++; ws(); if (text[i] === ']') throw new Fail('trailing comma before ]', i); continue; }
        if (text[i] === ']') { i++; return arr; }
        throw new Fail(`expected ',' or ']', found ${what()}`, i);
      }
    }
    if (c === '"') return str();
    for (const [word, v] of [['true', true], ['false', false], ['null', null]] as const) {
      if (text.startsWith(word, i)) { i += word.length; return v; }
    }
    return num();
  };

  try {
    if (text.charCodeAt(0) === 0xfeff) i = 1; // tolerate a UTF-8 byte order mark
    const v = value('', 0);
    ws();
    if (i < text.length) throw new Fail(`unexpected ${what()} after the end of the document`, i);
    return { ok: true, value: v, positions };
  } catch (e) {
    if (!(e instanceof Fail)) return { ok: false, message: `internal parser error: ${String(e)}`, line: 0, col: 0 };
    const p = posOf(e.offset);
    return { ok: false, message: e.message, line: p.line, col: p.col };
  }
}
