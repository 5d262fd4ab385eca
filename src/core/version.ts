import { readFileSync } from 'node:fs';
import { packagedAsset } from './packaged.js';

/**
 * Sluice's version from package.json (dist/src/core/ -> the package root, or the copy a single
 * executable carries), or 'unknown' when it cannot be read.
 */
export function sluiceVersion(): string {
  try {
    const text = packagedAsset('package.json')?.toString('utf8') ?? readFileSync(new URL('../../../package.json', import.meta.url), 'utf8');
    return (JSON.parse(text) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}
