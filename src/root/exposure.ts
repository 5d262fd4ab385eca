import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { formatHostPort, type Endpoint } from '../core/address.js';
import type { Clock } from '../core/clock.js';
import type { SluiceConfig } from '../config/types.js';
import type { EventStream } from '../observe/events.js';
import type { RouteDepsSource, RouteRuntime } from '../listen/route.js';
import type { DatagramDialer } from '../upstream/dialer.js';
import type { UdpDatapath } from '../datapath/udp-datapath.js';
import type { StreamDatapath } from '../datapath/stream-datapath.js';
import { Gateway } from '../gateway/gateway.js';
import { Agent } from '../agent/agent.js';
import { agentChange } from '../agent/agent-change.js';
import { registerExposeMetrics } from '../ops/expose-metrics.js';

export interface ExposureDeps {
  readonly clock: Clock;
  readonly events: EventStream;
  readonly routeDeps: RouteDepsSource;
  readonly nextFlowId: () => number;
  /** The agent's dialer toward local UDP services (the node's, so it uses the same datapath). */
  readonly datagramDialer?: DatagramDialer;
  /** The node's UDP datapath, for the gateway's shared port and the agent's socket. */
  readonly datapath?: UdpDatapath;
  /** The node's TCP stream datapath: the gateway's tunnel port, the agent's data connections. */
  readonly streamDatapath?: StreamDatapath;
  /** The ban list's verdict on a source, for the gateway's agent endpoint. */
  readonly banned?: (client: Endpoint) => string | undefined;
}


/** The gateway's public listeners and the agent's connect listeners: the exposure's listeners with client sessions. */
export function exposedRoutes(gateway: Gateway | undefined, agent: Agent | undefined): RouteRuntime[] {
  return [...(gateway?.agents().flatMap((l) => [...l.services.values()].map((s) => s.route)) ?? []), ...(agent?.connectRoutes ?? [])];
}

/** Starts `gateway:`; it reports through events on the stream. */
export function startGateway(config: NonNullable<SluiceConfig['gateway']>, deps: ExposureDeps): Promise<Gateway> {
  const { clock, events, routeDeps, datapath } = deps;
  return Gateway.start(config, { clock, events, routeDeps, datapath, ...(deps.streamDatapath ? { streamDatapath: deps.streamDatapath } : {}), ...(deps.banned ? { banned: deps.banned } : {}) });
}

/** Starts `agent:`; it reports through events on the stream. */
export function startAgent(config: NonNullable<SluiceConfig['agent']>, deps: ExposureDeps): Promise<Agent> {
  const { clock, events, routeDeps, datapath } = deps;
  return Agent.start(config, { clock, events, nextFlowId: deps.nextFlowId, datagramDialer: deps.datagramDialer, datapath, routeDeps, ...(deps.streamDatapath ? { streamDatapath: deps.streamDatapath } : {}) });
}

/**
 * The gateway and the agent a config asks for (either, both, or none): siblings that the root
 * starts and stops as two parts and shows here together, so neither imports the other.
 */
export class Exposure {
  readonly #registries = new WeakSet<Registry>();

  constructor(
    readonly gateway: Gateway | undefined,
    readonly agent: Agent | undefined,
    private readonly config: SluiceConfig,
    private readonly log: Logger,
  ) {}

  /** The listeners with client sessions: the gateway's public listeners and the agent's connect listeners. */
  routes(): RouteRuntime[] {
    return exposedRoutes(this.gateway, this.agent);
  }

  /** Adds the gateway and agent metrics to `registry` once (call again after the registry may have changed). */
  exposeMetrics(registry: Registry | undefined): void {
    const { gateway, agent } = this;
    if (!registry || (!gateway && !agent) || this.#registries.has(registry)) return;
    this.#registries.add(registry);
    registerExposeMetrics(registry, () => ({ gateway, agent }));
  }

  /**
   * Applies a reloaded config: new connection settings of `agent:` reconnect the agent at once;
   * any other change of `gateway:` or `agent:` is logged as needing a restart and not applied.
   * Rejects (nothing applied) when the agent's new CA file cannot be read.
   */
  async reload(next: SluiceConfig): Promise<void> {
    const was = this.agent?.config;
    const change = was && next.agent ? agentChange(was, next.agent) : was === next.agent ? 'none' : 'restart';
    if (change === 'connection') {
      await this.agent!.updateConnection(next.agent!);
      this.log.info({ gateway: formatHostPort(next.agent!.gateway.host, next.agent!.gateway.port) }, 'agent: connection settings reloaded; reconnecting');
    } else if (change === 'restart') {
      this.log.warn('agent: this change of agent: (other than gateway, token, fingerprint, ca, serverName, reconnect) takes effect after a restart');
    }
    if (!isDeepStrictEqual(this.config.gateway, next.gateway)) this.log.warn('gateway: changes of gateway: take effect after a restart');
  }
}
