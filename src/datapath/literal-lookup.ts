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
