import type { ContainerInfo } from '../../../src/discovery/container.js';

let seq = 0;

/** A running container as the list endpoint would describe it; host networking unless `networks` says otherwise. */
export function container(over: Partial<ContainerInfo> & { labels?: Record<string, string> } = {}): ContainerInfo {
  seq++;
  const id = over.id ?? `${seq.toString(16).padStart(4, '0')}${'ab'.repeat(30)}`;
  return {
    id,
    name: over.name ?? `c${seq}`,
    labels: over.labels ?? {},
    created: over.created ?? 1_700_000_000 + seq,
    state: over.state ?? 'running',
    hostNetwork: over.hostNetwork ?? over.networks === undefined,
    networks: over.networks ?? {},
    ports: over.ports ?? [],
  };
}
