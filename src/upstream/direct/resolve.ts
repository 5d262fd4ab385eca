import { lookup } from 'node:dns/promises';
import { canonicalIp, type Endpoint, type HostPort } from '../../core/address.js';
import { SluiceError } from '../../core/errors.js';
import { refusedClass, type DestinationClass } from '../../admission/address-class.js';

/** Resolves a name to addresses; IP literals come back as they are, without a lookup. */
export type Resolver = (host: string) => Promise<{ address: string; family: 4 | 6 }[]>;

export const systemResolver: Resolver = async (host) => {
  const all = await lookup(host, { all: true, verbatim: true });
  return all.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
};

/**
 * Which destinations a dial may reach. `trusted`: any address (hosts written in the config, or in
 * container labels, whose writers already hold the host). Otherwise the address classes allowed
 * (admission/address-class.ts); `metadata` and `unusable` addresses are never allowed.
 */
export type DestinationPolicy = 'trusted' | readonly DestinationClass[];

/** The policy for destinations that arrive from the network unless the config widens it. */
export const NETWORK_DESTINATIONS: DestinationPolicy = Object.freeze(['public'] as const);

/**
 * The one path from a host:port to the address a socket is given: resolve once, classify every
 * address of the answer, pin. The caller dials exactly the returned address and never resolves
 * the name again, so an answer that changes between check and dial (DNS rebinding) cannot steer
 * the connection. IP literals are classified without a lookup.
 *
 * Under a policy other than `trusted`, an answer with any address outside the policy is refused
 * whole (SLUICE_ERR_DESTINATION_DENIED, naming the address and its class) rather than filtered: a
 * name that mixes public and internal addresses is a rebinding attempt or a split-horizon
 * mistake, and picking the allowed part would hide either. The first address of the answer, in
 * the resolver's order, is the one dialed.
 */
export async function resolveDestination(target: HostPort, resolver: Resolver, policy: DestinationPolicy = 'trusted'): Promise<Endpoint> {
  const pinned = pinLiteral(target, policy);
  if (pinned) return pinned;
  let found: { address: string; family: 4 | 6 }[];
  try {
    found = (await resolver(target.host)).map((a) => canonicalIp(a.address)).filter((a) => a !== undefined);
  } catch (err) {
    throw new SluiceError('SLUICE_ERR_RESOLVE', `cannot resolve ${target.host}: ${(err as Error).message}`, { cause: err });
  }
  const first = found[0];
  if (!first) throw new SluiceError('SLUICE_ERR_RESOLVE', `${target.host} has no addresses`);
  if (policy !== 'trusted') for (const a of found) checkDestination(a.address, policy, ` (${target.host} resolved to ${found.map((f) => f.address).join(', ')})`);
  return { address: first.address, port: target.port, family: first.family };
}

/**
 * resolveDestination for an IP literal, without a promise (the per-connection path of a route
 * whose upstream is a literal): the canonical address, checked against `policy`; undefined when
 * `target.host` is a name. Throws SLUICE_ERR_DESTINATION_DENIED as resolveDestination does.
 */
export function pinLiteral(target: HostPort, policy: DestinationPolicy = 'trusted'): Endpoint | undefined {
  const literal = canonicalIp(target.host);
  if (!literal) return undefined;
  checkDestination(literal.address, policy, '');
  return { address: literal.address, port: target.port, family: literal.family };
}

function checkDestination(address: string, policy: DestinationPolicy, via: string): void {
  if (policy === 'trusted') return;
  const refused = refusedClass(address, policy);
  if (refused !== undefined) throw new SluiceError('SLUICE_ERR_DESTINATION_DENIED', `destination ${address} is ${refused}, which this path may not reach${via}`);
}

export { literalLookup } from '../../datapath/literal-lookup.js';
