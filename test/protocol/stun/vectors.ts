import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** ../shared/vectors next to the checkout; compiled tests live in dist/test/protocol/stun. */
const root = fileURLToPath(new URL('../../../../../shared/vectors/', import.meta.url));

/** Bytes of a hex vector file: every whitespace character is layout only. */
export function hexVector(path: string): Buffer {
  return Buffer.from(readFileSync(root + path, 'utf8').replace(/\s+/g, ''), 'hex');
}

export function jsonVector<T>(path: string): T {
  return JSON.parse(readFileSync(root + path, 'utf8')) as T;
}
