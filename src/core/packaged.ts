import { createRequire } from 'node:module';

/**
 * Files a single executable carries (scripts/build-sea.mjs puts them in its `assets`): the
 * package.json, the dashboard and the native addon. Outside a single executable, and on a Node
 * without `node:sea` (before 20.12), there are none and callers read the files from the package.
 */
interface SeaModule {
  isSea(): boolean;
  getAsset(key: string): ArrayBuffer;
}

function seaModule(): SeaModule | undefined {
  try {
    const sea = createRequire(import.meta.url)('node:sea') as SeaModule;
    return sea.isSea() ? sea : undefined;
  } catch {
    return undefined;
  }
}

const sea = seaModule();

/** This process is a single executable (Node's SEA). */
export const isSingleExecutable = sea !== undefined;

/** The asset stored under `key`, or undefined when there is none (or this is not a single executable). */
export function packagedAsset(key: string): Buffer | undefined {
  if (!sea) return undefined;
  try {
    return Buffer.from(sea.getAsset(key));
  } catch {
    return undefined;
  }
}
