import type { RouteRuntime } from '../listen/route.js';

/**
 * A public listener of one of the agent's services: what an agent link (agent-link.ts) keeps per
 * published service id, and what the publisher (service-publisher.ts) and pools (agent-pools.ts) make.
 */
export interface PublishedService {
  readonly serviceId: number;
  readonly name: string;
  readonly transport: 'tcp' | 'udp';
  readonly route: RouteRuntime;
  /** A port range's size (absent = one port) or the name claimed on the shared port, as published. */
  readonly ports?: number;
  readonly serverName?: string;
  /** True after a resume until the agent publishes it again; stale services are closed. */
  stale: boolean;
  /** A member of an agent pool: `route` is the pool's shared listener, and this leaves the pool instead of closing it. */
  readonly leave?: () => Promise<void>;
}
