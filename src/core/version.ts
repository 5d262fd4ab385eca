import { readFileSync } from 'node:fs';

/** Sluice's version from package.json (dist/src/core/ -> the package root), or 'unknown' when it cannot be read. */
export function sluiceVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}
