import { lookup } from 'node:dns/promises';
import { canonicalIp, type Endpoint, type HostPort } from '../../core/address.js';
import { SluiceError } from '../../core/errors.js';

/** Resolves a name to addresses; IP literals come back as they are, without a lookup. */
export type Resolver = (host: string) => Promise<{ address: string; family: 4 | 6 }[]>;

export const systemResolver: Resolver = async (host) => {
  const all = await lookup(host, { all: true, verbatim: true });
  return all.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
};

/**
 * Resolves `target` once per dial and returns a canonical endpoint. Names written in the config
 * are trusted; a caller that takes destinations from the network must check the result.
 */
export async function resolveTarget(target: HostPort, resolver: Resolver): Promise<Endpoint> {
  const literal = canonicalIp(target.host);
  if (literal) return { address: literal.address, port: target.port, family: literal.family };
  let found;
  try {
    found = await resolver(target.host);
  } catch (err) {
    throw new SluiceError('SLUICE_ERR_RESOLVE', `cannot resolve ${target.host}: ${(err as Error).message}`, { cause: err });
  }
  const first = found.map((a) => canonicalIp(a.address)).find((a) => a !== undefined);
  if (!first) throw new SluiceError('SLUICE_ERR_RESOLVE', `${target.host} has no addresses`);
  return { address: first.address, port: target.port, family: first.family };
}

/**
 * A dgram `lookup` that never calls DNS: our sockets are only ever given IP literals, and
 * Node's default lookup costs a tick and a closure on every unconnected send.
 */
export function literalLookup(
  address: string,
  family: unknown,
  callback: (err: Error | null, address: string, family: number) => void,
): void {
  callback(null, address, address.includes(':') ? 6 : 4);
}
