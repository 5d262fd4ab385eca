import maxmind, { type CountryResponse, type Reader } from 'maxmind';
import { SluiceError } from '../../core/errors.js';
import { isCountryCode } from '../../core/acl-spec.js';

/**
 * Answers "which country is this address in". Implementations must be synchronous and cheap
 * (they run on the accept path) and must not throw: an address they cannot place is
 * `undefined`, which the ACL handles by its `unknown` policy.
 */
export interface CountryLookup {
  /** ISO 3166-1 alpha-2 code (two uppercase letters) for a canonical IP address, or undefined. */
  country(address: string): string | undefined;
}

/**
 * The country an ACL uses from a MaxMind Country (or City) record: where the address is
 * (`country`), falling back to where its network is registered (`registered_country`) when
 * MaxMind has no location. `represented_country` (e.g. a military base abroad) is ignored.
 */
export function countryOfRecord(record: CountryResponse | null | undefined): string | undefined {
  const code = record?.country?.iso_code ?? record?.registered_country?.iso_code;
  return isCountryCode(code) ? code : undefined;
}

/** A CountryLookup over an open MaxMind DB reader. */
export class MaxmindCountryLookup implements CountryLookup {
  constructor(private readonly reader: Reader<CountryResponse>) {}

  /** Database type and build time, for a start-up log line. */
  get description(): string {
    const m = this.reader.metadata;
    return `${m.databaseType} built ${m.buildEpoch.toISOString()}`;
  }

  country(address: string): string | undefined {
    try {
      return countryOfRecord(this.reader.get(address));
    } catch {
      return undefined; // malformed address, or IPv6 in an IPv4-only database
    }
  }
}

/**
 * Reads a MaxMind DB file (GeoLite2-Country, GeoIP2-Country, -City or -Enterprise) into memory.
 * Call once at start or on reload; lookups are synchronous afterwards. A reload opens a new
 * lookup and swaps it in with the new ACL; the old one needs no closing (the file is not kept
 * open). Rejects with SLUICE_ERR_CONFIG_READ when the file is missing, is not a MaxMind DB, or
 * holds no countries (an ASN database, say).
 */
export async function openCountryDatabase(path: string): Promise<MaxmindCountryLookup> {
  let reader: Reader<CountryResponse>;
  try {
    reader = await maxmind.open<CountryResponse>(path);
  } catch (err) {
    throw new SluiceError('SLUICE_ERR_CONFIG_READ', `geoip.database: cannot open ${path}: ${(err as Error).message}`, { cause: err });
  }
  const type = reader.metadata.databaseType;
  if (!/country|city|enterprise/i.test(type)) {
    throw new SluiceError('SLUICE_ERR_CONFIG_READ', `geoip.database: ${path} is a ${type} database; a Country, City or Enterprise database is needed`);
  }
  return new MaxmindCountryLookup(reader);
}
