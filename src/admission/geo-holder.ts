import { SluiceError } from '../core/errors.js';
import { openCountryDatabase } from './acl/country.js';
import type { CountryLookup } from './acl/country.js';

/**
 * The country database in use. `load` opens a new file only when the path changes; a file that
 * cannot be opened leaves the current one in place and throws SLUICE_ERR_CONFIG_READ naming the key.
 */
export class GeoHolder {
  #path: string | undefined;
  current: CountryLookup | undefined;

  async load(path: string | undefined): Promise<void> {
    if (path === this.#path) return;
    if (path === undefined) {
      this.#path = undefined;
      this.current = undefined;
      return;
    }
    try {
      this.current = await openCountryDatabase(path);
      this.#path = path;
    } catch (err) {
      // openCountryDatabase's errors already name the key and the path.
      if (err instanceof SluiceError) throw err;
      throw new SluiceError('SLUICE_ERR_CONFIG_READ', `geoip.database: cannot open ${path}: ${(err as Error).message}`, { cause: err });
    }
  }
}
