import { z } from 'zod';

/**
 * The one place where validation problems become the words `sluice check` prints. Schemas say
 * what they expect (`expecting(z.string(), 'a duration such as 30s')`); this module phrases every
 * kind of zod issue from that, so no wording of the validation library reaches the user.
 * Messages a schema writes itself (a `refine` text, a custom issue) are used as they are.
 */

/**
 * What a schema expects, in words, where its type alone says too little ("a string"). Filled
 * while the schema modules load (each schema is registered once, where it is defined), read-only after.
 */
const expected = z.registry<{ expects: string }>();

/** Registers `words` ("a duration such as 30s") as what `schema` expects; returns the schema. */
export function expecting<T extends z.ZodType>(schema: T, words: string): T {
  expected.add(schema, { expects: words });
  return schema;
}

/** The raw issue zod hands to an error map: the failing schema (`inst`) and input are still there. */
interface RawIssue {
  readonly code?: string;
  readonly input?: unknown;
  readonly inst?: unknown;
  readonly expected?: string;
  readonly values?: readonly unknown[];
  readonly origin?: string;
  readonly minimum?: number | bigint;
  readonly maximum?: number | bigint;
  readonly inclusive?: boolean;
  readonly format?: string;
  readonly divisor?: number;
}

const BY_TYPE: Record<string, string> = {
  number: 'a number',
  int: 'a whole number',
  string: 'a text value',
  boolean: 'true or false',
  object: 'a map of keys',
  record: 'a map of names',
  array: 'a list',
};

/**
 * The error map for config parsing (`schema.safeParse(raw, { error: configIssueText })`).
 * `input` undefined means the key is absent: "is required".
 */
export function configIssueText(issue: RawIssue): string {
  const label = labelOf(issue.inst);
  switch (issue.code) {
    case 'invalid_type': {
      if (issue.input === undefined) return 'is required';
      const want = label ?? BY_TYPE[issue.expected ?? ''] ?? `a ${issue.expected}`;
      return `expected ${want}; got ${describeValue(issue.input)}${typeHint(issue, want)}`;
    }
    case 'invalid_value': {
      const values = (issue.values ?? []).map((v) => String(v));
      const got = typeof issue.input === 'string' ? issue.input : undefined;
      const near = got === undefined ? undefined : closest(got, values);
      return `expected one of ${values.join(', ')}; got ${describeValue(issue.input)}${near ? ` (did you mean "${near}"?)` : ''}`;
    }
    case 'too_small':
      return bound('at least', 'above', issue.minimum, issue);
    case 'too_big':
      return bound('at most', 'below', issue.maximum, issue);
    case 'not_multiple_of':
      return `must be a multiple of ${issue.divisor}`;
    case 'invalid_union':
      return `expected ${label ?? 'a value of another type'}; got ${describeValue(issue.input)}`;
    case 'invalid_format':
      return label ? `expected ${label}; got ${describeValue(issue.input)}` : `is not in the expected format (${issue.format ?? 'pattern'})`;
    default:
      return label ? `expected ${label}` : 'is not valid here';
  }
}

function bound(word: string, strict: string, limit: number | bigint | undefined, issue: RawIssue): string {
  const n = Number(limit);
  if (issue.origin === 'string') return n === 1 && word === 'at least' ? 'must not be empty' : `must be ${word} ${n} characters long`;
  if (issue.origin === 'array' || issue.origin === 'set') return word === 'at least' ? `needs at least ${n} entr${n === 1 ? 'y' : 'ies'}` : `takes at most ${n} entries`;
  return `must be ${issue.inclusive === false ? strict : word} ${n}; got ${describeValue(issue.input)}`;
}

/** A second sentence where the usual cause of a type mix-up is known. */
function typeHint(issue: RawIssue, want: string): string {
  if (want.startsWith('a duration') && typeof issue.input === 'number') return ` (a duration needs a unit: ${issue.input}s or ${issue.input}ms)`;
  if (Array.isArray(issue.input) && issue.expected === 'string') {
    return ' (YAML reads [...] as a list: quote an IPv6 address with its port, e.g. "[::1]:53")';
  }
  if (issue.expected === 'array' && (typeof issue.input === 'string' || typeof issue.input === 'number')) return ` (write a list: [${issue.input}])`;
  if (Array.isArray(issue.input) && (issue.expected === 'record' || issue.expected === 'object')) {
    return ' (write name: followed by its keys, not - items)';
  }
  return '';
}

/** How a value is shown back to the user: `"lots"`, `the number 30`, `a list`, `nothing`. */
export function describeValue(value: unknown): string {
  if (value === null || value === undefined) return 'nothing (the key has no value)';
  if (typeof value === 'string') return `"${value.length > 60 ? value.slice(0, 57) + '...' : value}"`;
  if (typeof value === 'number' || typeof value === 'bigint') return `the number ${value}`;
  if (typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return 'a list';
  return 'a map';
}

function labelOf(inst: unknown): string | undefined {
  return inst instanceof z.ZodType ? expected.get(inst)?.expects : undefined;
}

/**
 * Text for a key the schema at `path` does not have, with the closest known key when one is near
 * (`upstrem` -> `upstream`). `schema` is the top-level schema; the known keys are read from it.
 */
export function unknownKeyText(schema: z.ZodType, path: readonly PropertyKey[], key: string): { message: string; suggestion?: string } {
  const known = keysAt(schema, path);
  const suggestion = closest(key, known);
  if (suggestion) return { message: `unknown key "${key}" (did you mean "${suggestion}"?)`, suggestion };
  // A key written one level too high: `idleTimeout` beside `listen` belongs under `udp:` or `tcp:`.
  const homes = known.filter((k) => keysAt(schema, [...path, k]).includes(key));
  const where = homes.map((h) => `${h}:`).join(' or ');
  return { message: `unknown key "${key}"${homes.length > 0 ? ` here (it goes under ${where})` : ''}` };
}

/** The keys of the object schema at `path` (through optional, default, pipe, record and array). */
function keysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let s: unknown = schema;
  for (let i = 0; i <= path.length; i++) {
    s = unwrap(s);
    if (i === path.length) break;
    const def = (s as { _zod?: { def?: { type?: string; shape?: Record<string, unknown>; valueType?: unknown; element?: unknown } } })._zod?.def;
    if (def?.type === 'object') s = def.shape?.[String(path[i])];
    else if (def?.type === 'record') s = def.valueType;
    else if (def?.type === 'array') s = def.element;
    else return [];
  }
  const def = (s as { _zod?: { def?: { type?: string; shape?: Record<string, unknown> } } } | undefined)?._zod?.def;
  return def?.type === 'object' && def.shape ? Object.keys(def.shape) : [];
}

function unwrap(s: unknown): unknown {
  for (let n = 0; n < 10; n++) {
    const def = (s as { _zod?: { def?: { type?: string; innerType?: unknown; in?: unknown } } } | undefined)?._zod?.def;
    if (def?.innerType !== undefined) s = def.innerType;
    else if (def?.type === 'pipe') s = def.in;
    else return s;
  }
  return s;
}

/** The candidate nearest `word` by edit distance, when it is near enough to be a typo. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  const w = word.toLowerCase();
  for (const c of candidates) {
    const d = editDistance(w, c.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  // Distance 0 here is a difference of case only (`IdleTimeout`), which is a typo too.
  if (best === undefined || best === word) return undefined;
  return bestDistance <= Math.max(1, Math.floor(word.length / 3)) ? best : undefined;
}

/** Optimal string alignment distance: a swap of two neighbours counts as one edit. */
function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[] = new Array(rows * cols).fill(0);
  for (let i = 0; i < rows; i++) d[i * cols] = i;
  for (let j = 0; j < cols; j++) d[j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[(i - 1) * cols + j]! + 1, d[i * cols + j - 1]! + 1, d[(i - 1) * cols + j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[(i - 2) * cols + j - 2]! + 1);
      d[i * cols + j] = v;
    }
  }
  return d[rows * cols - 1]!;
}
