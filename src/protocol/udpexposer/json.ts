/**
 * A strict JSON reader (RFC 8259) for token claims, because udpexposer's u64 values exceed 2^53
 * and `JSON.parse` would round them. Numbers keep their source text; objects keep every member
 * in order, so callers can refuse duplicates the way serde does. Pure; throws only JsonSyntax,
 * which callers turn into a result.
 */

export type JsonValue =
  | { readonly t: 'null' }
  | { readonly t: 'bool'; readonly v: boolean }
  | { readonly t: 'str'; readonly v: string }
  | { readonly t: 'num'; readonly text: string }
  | { readonly t: 'arr'; readonly items: readonly JsonValue[] }
  | { readonly t: 'obj'; readonly members: readonly (readonly [string, JsonValue])[] };

export class JsonSyntax extends Error {
  override name = 'JsonSyntax';
}

/** serde_json stops at 128 levels; claims here are two levels deep, so 32 is plenty. */
const MAX_DEPTH = 32;
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

export function parseJson(text: string): JsonValue {
  const p = { s: text, i: 0 };
  const v = value(p, 0);
  ws(p);
  if (p.i !== text.length) throw new JsonSyntax(`trailing characters at ${p.i}`);
  return v;
}

interface Cursor {
  readonly s: string;
  i: number;
}

function ws(p: Cursor): void {
  for (;;) {
    const c = p.s.charCodeAt(p.i);
    if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) p.i++;
    else return;
  }
}

function value(p: Cursor, depth: number): JsonValue {
  if (depth > MAX_DEPTH) throw new JsonSyntax('nested too deeply');
  ws(p);
  const c = p.s[p.i];
  switch (c) {
    case '{':
      return object(p, depth);
    case '[':
      return array(p, depth);
    case '"':
      return { t: 'str', v: string(p) };
    case 't':
      return literal(p, 'true', { t: 'bool', v: true });
    case 'f':
      return literal(p, 'false', { t: 'bool', v: false });
    case 'n':
      return literal(p, 'null', { t: 'null' });
    default: {
      NUMBER.lastIndex = p.i;
      const m = NUMBER.exec(p.s);
      if (!m) throw new JsonSyntax(`unexpected ${c === undefined ? 'end' : JSON.stringify(c)} at ${p.i}`);
      p.i += m[0].length;
      return { t: 'num', text: m[0] };
    }
  }
}

function literal(p: Cursor, word: string, v: JsonValue): JsonValue {
  if (!p.s.startsWith(word, p.i)) throw new JsonSyntax(`bad literal at ${p.i}`);
  p.i += word.length;
  return v;
}

function object(p: Cursor, depth: number): JsonValue {
  p.i++;
  const members: [string, JsonValue][] = [];
  ws(p);
  if (p.s[p.i] === '}') {
    p.i++;
    return { t: 'obj', members };
  }
  for (;;) {
    ws(p);
    if (p.s[p.i] !== '"') throw new JsonSyntax(`expected a member name at ${p.i}`);
    const key = string(p);
    ws(p);
    if (p.s[p.i] !== ':') throw new JsonSyntax(`expected ':' at ${p.i}`);
    p.i++;
    members.push([key, value(p, depth + 1)]);
    ws(p);
    const c = p.s[p.i++];
    if (c === '}') return { t: 'obj', members };
    if (c !== ',') throw new JsonSyntax(`expected ',' or '}' at ${p.i - 1}`);
  }
}

function array(p: Cursor, depth: number): JsonValue {
  p.i++;
  const items: JsonValue[] = [];
  ws(p);
  if (p.s[p.i] === ']') {
    p.i++;
    return { t: 'arr', items };
  }
  for (;;) {
    items.push(value(p, depth + 1));
    ws(p);
    const c = p.s[p.i++];
    if (c === ']') return { t: 'arr', items };
    if (c !== ',') throw new JsonSyntax(`expected ',' or ']' at ${p.i - 1}`);
  }
}

const ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

function string(p: Cursor): string {
  const start = ++p.i;
  let out = '';
  let from = start;
  for (;;) {
    const c = p.s.charCodeAt(p.i);
    if (Number.isNaN(c)) throw new JsonSyntax('unterminated string');
    if (c === 0x22) {
      out += p.s.slice(from, p.i++);
      return out;
    }
    if (c < 0x20) throw new JsonSyntax(`control character in string at ${p.i}`);
    if (c !== 0x5c) {
      p.i++;
      continue;
    }
    out += p.s.slice(from, p.i);
    const e = p.s[p.i + 1];
    if (e === 'u') {
      const unit = hex4(p, p.i + 2);
      p.i += 6;
      if (unit >= 0xd800 && unit <= 0xdbff) {
        if (p.s[p.i] !== '\\' || p.s[p.i + 1] !== 'u') throw new JsonSyntax('lone leading surrogate');
        const low = hex4(p, p.i + 2);
        if (low < 0xdc00 || low > 0xdfff) throw new JsonSyntax('lone leading surrogate');
        p.i += 6;
        out += String.fromCharCode(unit, low);
      } else if (unit >= 0xdc00 && unit <= 0xdfff) {
        throw new JsonSyntax('lone trailing surrogate');
      } else {
        out += String.fromCharCode(unit);
      }
    } else {
      const r = e === undefined ? undefined : ESCAPES[e];
      if (r === undefined) throw new JsonSyntax(`bad escape at ${p.i}`);
      out += r;
      p.i += 2;
    }
    from = p.i;
  }
}

function hex4(p: Cursor, at: number): number {
  const h = p.s.slice(at, at + 4);
  if (!/^[0-9a-fA-F]{4}$/.test(h)) throw new JsonSyntax(`bad \\u escape at ${at}`);
  return parseInt(h, 16);
}
