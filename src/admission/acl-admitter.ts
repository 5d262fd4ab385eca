import type { AclSpec } from '../core/acl-spec.js';
import { compileAcl } from './acl/acl-policy.js';
import type { CountryLookup } from './acl/country.js';
import type { Admitter } from './admitter.js';

/** The ACL step of admission for one route, or undefined when the route has no rule. */
export function aclAdmitter(spec: AclSpec | undefined, geo: CountryLookup | undefined): Admitter | undefined {
  if (!spec) return undefined;
  const policy = compileAcl(spec, geo);
  if (policy.empty) return undefined;
  return (client) => policy.check(client.address, client.family);
}
