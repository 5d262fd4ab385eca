import { open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { errnoCode, SluiceError } from '../core/errors.js';
import { makeDir } from '../core/make-dir.js';
import type { SluiceConfig } from '../config/types.js';

/** The record outputs of a config that are files, by config key. */
function fileOutputs(config: SluiceConfig): Map<string, string> {
  const files = new Map<string, string>();
  for (const [key, output] of [
    ['accessLog.output', config.accessLog.output],
    ['flowLog.output', config.flowLog.output],
  ] as const) {
    if (output !== 'off' && output !== 'stdout' && output !== 'stderr') files.set(key, output);
  }
  return files;
}

/**
 * Opens for appending (creating its folders and the file) every file output of `next` that
 * `current` does not already write, and closes it again, so an output that can never be written
 * stops a start or a reload before anything changes. Throws SluiceError SLUICE_ERR_OUTPUT naming
 * the key and the path. A failure later, at run time, is the writers' to report (health, log, counter).
 */
export async function checkOutputs(next: SluiceConfig, current?: SluiceConfig): Promise<void> {
  const before = current ? fileOutputs(current) : new Map<string, string>();
  for (const [key, path] of fileOutputs(next)) {
    if (before.get(key) === path) continue;
    try {
      await makeDir(dirname(path));
      await (await open(path, 'a')).close();
    } catch (err) {
      throw new SluiceError('SLUICE_ERR_OUTPUT', `${key}: cannot open ${path} for writing: ${errnoCode(err) ?? (err as Error).message}`, { cause: err });
    }
  }
}
