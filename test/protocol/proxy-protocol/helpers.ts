import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ProxyHeaderError, type ProxyHeaderErrorReason } from '../../../src/protocol/proxy-protocol/index.js';

/** Repository root, from dist/test/protocol/proxy-protocol/ where the compiled tests run. */
export const repoRoot = fileURLToPath(new URL('../../../../', import.meta.url));
export const corpusDir = `${repoRoot}test/protocol/proxy-protocol/corpus/`;
/** ../shared is beside the checkout for every developer and CI run (../shared/README.md). */
const vectorDir = `${repoRoot}../shared/vectors/proxy-protocol/`;

export interface VectorParsed {
  command: string;
  family?: string;
  transport?: string;
  src?: string;
  dst?: string;
  srcPort?: number;
  dstPort?: number;
  headerLength: number;
  payloadAscii?: string;
  payloadHex?: string;
  tlvs?: { type: number; hex: string; ssl?: { client: number; verify: number; sub: { type: number; ascii: string }[] } }[];
}

export interface Vector {
  id: string;
  description: string;
  hex: string;
  expect: 'accept' | 'reject' | 'reject-tlv' | 'implementation-defined';
  parsed?: VectorParsed;
}

export function loadVectors(name: 'v1' | 'v2'): Vector[] {
  const json = JSON.parse(readFileSync(`${vectorDir}${name}.json`, 'utf8')) as { vectors: Vector[] };
  return json.vectors;
}

export function hex(text: string): Buffer {
  return Buffer.from(text.replace(/\s+/g, ''), 'hex');
}

/** Runs `fn` and asserts it throws the codec's typed error (with `reason` when given). */
export function assertRejects(fn: () => unknown, reason?: ProxyHeaderErrorReason): ProxyHeaderError {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  assert.ok(thrown instanceof ProxyHeaderError, `expected a ProxyHeaderError, got ${String(thrown)}`);
  assert.equal(thrown.code, 'SLUICE_ERR_PROXY_HEADER_INVALID');
  if (reason !== undefined) assert.equal(thrown.reason, reason, thrown.message);
  return thrown;
}

/**
 * fast-check run settings: a fixed seed so CI is repeatable, FC_SEED / FC_RUNS to explore more
 * (FC_RUNS=100000 for a long local run). A failure prints its seed and path; add the shrunk input
 * to corpus/ as a hex file.
 */
export function fcParams(defaultRuns: number): { seed: number; numRuns: number } {
  const seed = process.env.FC_SEED !== undefined ? Number(process.env.FC_SEED) : 0x5eed;
  const numRuns = process.env.FC_RUNS !== undefined ? Number(process.env.FC_RUNS) : defaultRuns;
  return { seed, numRuns };
}
