// Corpus-plus-mutation fuzzing for the parsers of network bytes (docs/security.md). Each parser
// family has a file here: it gathers a corpus (golden vectors in ../shared/vectors, the test
// fixtures), and fast-check (fixed seed, bounded runs) feeds it mutated inputs: bit flips,
// truncation, splicing two corpus entries, inserted and deleted bytes, and 1/2/4-byte fields
// overwritten with extremes (0, 1, 0x7f.., 0x80.., 0xff..), which is how a length field says
// 0xffff. A parser must return its documented result or throw its typed error with a stable code;
// any other exception, more than `maxMsPerInput` on one input, or a large allocation fails.
// FC_SEED / FC_RUNS explore further; a failure prints the seed and the shrunk input.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';

/** Repository root, from dist/test/fuzz/ where the compiled tests run. */
export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

/** ../shared/vectors beside the checkout (or beside a parent folder, for a worktree). */
export const vectorsDir: string = (() => {
  for (let dir = repoRoot; ; dir = dirname(dir)) {
    const candidate = join(dir, '..', 'shared', 'vectors');
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) throw new Error(`no shared/vectors beside ${repoRoot} or any parent`);
  }
})();

export function vectorText(path: string): string {
  return readFileSync(join(vectorsDir, path), 'utf8');
}

export function hexBytes(text: string): Buffer {
  return Buffer.from(text.replace(/\s+/g, ''), 'hex');
}

/** Every `*.hex` file of a test corpus folder (lines starting with # are comments). */
export function hexCorpus(relDir: string): Buffer[] {
  const dir = join(repoRoot, relDir);
  return readdirSync(dir)
    .filter((f) => f.endsWith('.hex'))
    .sort()
    .map((f) => hexBytes(readFileSync(join(dir, f), 'utf8').split('\n').filter((l) => !l.startsWith('#')).join('')));
}

/** Every hex string found anywhere in a JSON document under keys ending in `hex` (or named `hex`). */
export function hexStringsIn(json: unknown): Buffer[] {
  const out: Buffer[] = [];
  const walk = (v: unknown, key: string) => {
    if (typeof v === 'string' && /hex$/i.test(key) && /^[0-9a-f\s]*$/i.test(v) && v.replace(/\s+/g, '').length % 2 === 0) out.push(hexBytes(v));
    else if (Array.isArray(v)) v.forEach((x) => walk(x, key));
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, k);
  };
  walk(json, '');
  return out;
}

const EXTREMES = [0, 1, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff];

type Mutation =
  | { kind: 'flip'; pos: number; bit: number }
  | { kind: 'truncate'; pos: number }
  | { kind: 'splice'; other: number; pos: number; otherPos: number }
  | { kind: 'insert'; pos: number; bytes: Uint8Array }
  | { kind: 'delete'; pos: number; len: number }
  | { kind: 'extreme'; pos: number; width: 1 | 2 | 4; value: number }
  | { kind: 'repeat'; pos: number; len: number; times: number };

function applyMutation(buf: Buffer, m: Mutation, corpus: readonly Buffer[]): Buffer {
  const at = (p: number, len = buf.length) => (len === 0 ? 0 : p % (len + 1));
  switch (m.kind) {
    case 'flip': {
      if (buf.length === 0) return buf;
      const out = Buffer.from(buf);
      out[m.pos % out.length]! ^= 1 << m.bit;
      return out;
    }
    case 'truncate':
      return buf.subarray(0, at(m.pos));
    case 'splice': {
      const other = corpus[m.other % corpus.length]!;
      return Buffer.concat([buf.subarray(0, at(m.pos)), other.subarray(at(m.otherPos, other.length))]);
    }
    case 'insert': {
      const p = at(m.pos);
      return Buffer.concat([buf.subarray(0, p), m.bytes, buf.subarray(p)]);
    }
    case 'delete': {
      const p = at(m.pos);
      return Buffer.concat([buf.subarray(0, p), buf.subarray(p + m.len)]);
    }
    case 'extreme': {
      if (buf.length < m.width) return buf;
      const out = Buffer.from(buf);
      const p = m.pos % (out.length - m.width + 1);
      const v = m.value % 2 ** (8 * m.width);
      out.writeUIntBE(v, p, m.width);
      return out;
    }
    case 'repeat': {
      const p = at(m.pos);
      const piece = buf.subarray(p, p + m.len);
      return Buffer.concat([buf.subarray(0, p), ...Array<Buffer>(m.times).fill(piece), buf.subarray(p)]);
    }
  }
}

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('flip' as const), pos: fc.nat(), bit: fc.nat({ max: 7 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('truncate' as const), pos: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('splice' as const), other: fc.nat(), pos: fc.nat(), otherPos: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('insert' as const), pos: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), pos: fc.nat(), len: fc.integer({ min: 1, max: 16 }) }) },
  {
    weight: 4,
    arbitrary: fc.record({ kind: fc.constant('extreme' as const), pos: fc.nat(), width: fc.constantFrom(1 as const, 2 as const, 4 as const), value: fc.constantFrom(...EXTREMES) }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('repeat' as const), pos: fc.nat(), len: fc.integer({ min: 1, max: 32 }), times: fc.integer({ min: 2, max: 64 }) }) },
);

/** Corpus entries, each mutated 1-4 times; a few unmutated entries and some random bytes too. */
export function mutatedInputs(corpus: readonly Buffer[], maxRandomBytes = 256): fc.Arbitrary<Buffer> {
  assert.ok(corpus.length > 0, 'an empty corpus');
  const entry = fc.nat({ max: corpus.length - 1 }).map((i) => corpus[i]!);
  return fc.oneof(
    { weight: 1, arbitrary: entry },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: maxRandomBytes }).map((u) => Buffer.from(u)) },
    {
      weight: 10,
      arbitrary: fc.tuple(entry, fc.array(mutationArb, { minLength: 1, maxLength: 4 })).map(([b, ms]) => ms.reduce((acc, m) => applyMutation(acc, m, corpus), b)),
    },
  );
}

export interface FuzzTarget<T> {
  readonly inputs: fc.Arbitrary<T>;
  /** Runs the parser; returns nothing or throws. */
  readonly run: (input: T) => void;
  /** Whether a thrown value is the parser's documented typed error. */
  readonly typedError: (err: unknown) => boolean;
  readonly numRuns: number;
  /** Slowest allowed input (generous: the machine is shared; a hang or quadratic blow-up is far above it). */
  readonly maxMsPerInput?: number;
  /** Largest allowed growth of ArrayBuffer memory across one input. */
  readonly maxAllocBytes?: number;
}

export interface FuzzStats {
  readonly inputs: number;
  readonly typedErrors: number;
  readonly slowestMs: number;
  readonly largestAllocBytes: number;
}

/** Fixed seed unless FC_SEED is set; FC_RUNS multiplies nothing, it replaces the run count. */
export function fcSettings(numRuns: number): { seed: number; numRuns: number } {
  return {
    seed: process.env.FC_SEED !== undefined ? Number(process.env.FC_SEED) : 0x5a1ce,
    numRuns: process.env.FC_RUNS !== undefined ? Number(process.env.FC_RUNS) : numRuns,
  };
}

export function fuzz<T>(target: FuzzTarget<T>): FuzzStats {
  const maxMs = target.maxMsPerInput ?? 250;
  const maxAlloc = target.maxAllocBytes ?? 8 * 1024 * 1024;
  let inputs = 0;
  let typedErrors = 0;
  let slowestMs = 0;
  let largestAllocBytes = 0;
  fc.assert(
    fc.property(target.inputs, (input) => {
      inputs++;
      const before = process.memoryUsage().arrayBuffers;
      const started = performance.now();
      try {
        target.run(input);
      } catch (err) {
        if (!target.typedError(err)) throw new Error(`not the typed error: ${(err as Error)?.stack ?? String(err)}`);
        typedErrors++;
      }
      const ms = performance.now() - started;
      const grew = process.memoryUsage().arrayBuffers - before;
      slowestMs = Math.max(slowestMs, ms);
      largestAllocBytes = Math.max(largestAllocBytes, grew);
      assert.ok(ms <= maxMs, `one input took ${ms.toFixed(1)} ms (limit ${maxMs})`);
      assert.ok(grew <= maxAlloc, `one input grew ArrayBuffer memory by ${grew} bytes (limit ${maxAlloc})`);
    }),
    { ...fcSettings(target.numRuns), endOnFailure: true },
  );
  return { inputs, typedErrors, slowestMs: Math.round(slowestMs * 10) / 10, largestAllocBytes };
}

/** A SluiceError-style value with `code`. */
export function hasCode(err: unknown, ...codes: string[]): boolean {
  return err instanceof Error && codes.includes((err as { code?: unknown }).code as string);
}

/**
 * Structure-aware mutations of JSON documents: a corpus document with 1-3 of its values (found
 * by a walk in document order) replaced by an arbitrary JSON value, or removed.
 */
export function mutatedJson(corpus: readonly unknown[]): fc.Arbitrary<unknown> {
  const edit = fc.record({ at: fc.nat(), remove: fc.boolean(), value: fc.jsonValue({ maxDepth: 3 }) });
  return fc
    .tuple(fc.nat({ max: corpus.length - 1 }), fc.array(edit, { minLength: 1, maxLength: 3 }))
    .map(([i, edits]) => {
      let doc: unknown = structuredClone(corpus[i]);
      for (const e of edits) doc = replaceNth(doc, e.at, e.remove, e.value);
      return doc;
    });
}

function replaceNth(doc: unknown, n: number, remove: boolean, value: unknown): unknown {
  const slots: { parent: Record<string, unknown> | unknown[]; key: string | number }[] = [];
  const walk = (v: unknown) => {
    if (Array.isArray(v)) v.forEach((x, i) => (slots.push({ parent: v, key: i }), walk(x)));
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) (slots.push({ parent: v as Record<string, unknown>, key: k }), walk(x));
  };
  walk(doc);
  if (slots.length === 0) return value;
  const s = slots[n % slots.length]!;
  if (remove && !Array.isArray(s.parent)) delete s.parent[s.key as string];
  else (s.parent as Record<string | number, unknown>)[s.key] = value;
  return doc;
}
