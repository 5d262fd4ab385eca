import { createHash, randomUUID } from 'node:crypto';

/** Who observed a flow: Sluice's own sessions, or the kernel's connection tracking. */
export type FlowSource = 'sluice' | 'conntrack';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A fresh random (version 4) UUID naming this process; flow UUIDs are derived under it. */
export function newInstanceId(): string {
  return randomUUID();
}

/**
 * The UUID of one flow: a name-based version 5 UUID (RFC 9562 §5.5, SHA-1) with the instance UUID
 * as namespace and `<source>/<localId>` as the name, as NetBird's flow logger does with conntrack
 * ids. So every record of a flow carries the same UUID, two instances never collide, and a Sluice
 * flow number and a conntrack id that happen to be equal still get different UUIDs.
 * Costs one SHA-1 over ~40 bytes; callers compute it per record instead of keeping a table.
 */
export function flowUuid(instanceId: string, source: FlowSource, localId: number | string): string {
  return uuidV5(instanceId, `${source}/${localId}`);
}

/** RFC 9562 §5.5. Exported for the test vector; use `flowUuid`. */
export function uuidV5(namespace: string, name: string): string {
  if (!UUID.test(namespace)) throw new TypeError(`not a UUID: ${namespace}`);
  const digest = createHash('sha1').update(Buffer.from(namespace.replace(/-/g, ''), 'hex')).update(name, 'utf8').digest();
  digest[6] = (digest[6]! & 0x0f) | 0x50; // version 5
  digest[8] = (digest[8]! & 0x3f) | 0x80; // variant 10
  const h = digest.toString('hex', 0, 16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}
