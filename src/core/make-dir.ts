import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { errnoCode } from './errors.js';

/**
 * `mkdir -p`, bounded by the depth of `path`. Node 20's `mkdir(path, { recursive: true })` loops
 * forever in the thread pool where the kernel answers ENOENT for a parent that exists (a new
 * folder under /proc): that spin held a thread at full CPU and kept the process from exiting.
 * Here each level is tried at most twice, and the error of the deepest level is thrown.
 */
export async function makeDir(path: string, mode?: number): Promise<void> {
  try {
    await mkdir(path, { mode });
    return;
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'EEXIST') return;
    const parent = dirname(path);
    if (code !== 'ENOENT' || parent === path) throw err;
  }
  await makeDir(dirname(path), mode);
  try {
    await mkdir(path, { mode });
  } catch (err) {
    if (errnoCode(err) !== 'EEXIST') throw err;
  }
}
