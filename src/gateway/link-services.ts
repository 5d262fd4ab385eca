import type { ControlMessage, Publish } from '../protocol/tunnel/index.js';
import type { ControlChannel } from '../upstream/agent/control-channel.js';
import type { PublishedService } from './published-service.js';

/** What the services table needs from its link's owner. */
export interface LinkServicesDeps {
  /** Publishes one service (service-publisher.ts) and gives the answer to send back. */
  publish(m: Publish): Promise<ControlMessage>;
  /** A service's public listener closed. */
  closed(s: PublishedService): void;
}

/**
 * The services one agent link has published (agent-link.ts), by service id: PUBLISH one at a
 * time per id, and closing a service's public listener (or leaving its pool). The link keeps the
 * sessions, the resume timers and the peers; the gateway's publisher fills `byId`.
 */
export class LinkServices {
  readonly byId = new Map<number, PublishedService>();
  readonly #publishing = new Set<number>();

  constructor(private readonly deps: LinkServicesDeps) {}

  /** PUBLISH received on `ch`: refused while that id is being published; the answer goes back only while `current()` is still `ch`. */
  publish(m: Publish, ch: ControlChannel | null, current: () => ControlChannel | null): void {
    if (this.#publishing.has(m.serviceId)) {
      ch?.send({ type: 'publish-error', serviceId: m.serviceId, code: 'duplicate-service', message: `service id ${m.serviceId} is being published` });
      return;
    }
    this.#publishing.add(m.serviceId);
    void this.deps.publish(m).then((answer) => {
      this.#publishing.delete(m.serviceId);
      if (current() === ch) ch?.send(answer);
    });
  }

  /** Closes one service's listener, or leaves its pool. */
  async close(s: PublishedService): Promise<void> {
    if (s.leave) return s.leave();
    await s.route.close('upstream-closed');
    this.deps.closed(s);
  }

  /** Closes every service (each started now) and empties the table. */
  closeAll(): Promise<void>[] {
    const routes = [...this.byId.values()].map((s) => this.close(s));
    this.byId.clear();
    return routes;
  }
}
