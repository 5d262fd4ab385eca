import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { registerExposeMetrics } from './expose-metrics.js';
import type { Clock } from '../core/clock.js';
import type { SluiceConfig } from '../config/types.js';
import type { EventStream } from '../observe/events.js';
import { Agent, agentChange } from '../agent/agent.js';
import { formatHostPort, type Endpoint } from '../core/address.js';
import { Gateway } from './gateway.js';
import type { RouteDepsSource, RouteRuntime } from '../listen/route.js';
import type { DatagramDialer } from '../upstream/dialer.js';
import type { UdpDatapath } from '../datapath/udp-datapath.js';

/** The gateway and the agent a config asks for (either, both, or none), with their log lines. */
export interface Exposure {
  readonly gateway: Gateway | undefined;
  readonly agent: Agent | undefined;
  /** The listeners with client sessions: the gateway's public listeners and the agent's connect listeners. */
  routes(): RouteRuntime[];
  /** Adds the gateway and agent metrics to `registry` once (call again after the registry may have changed). */
  exposeMetrics(registry: Registry | undefined): void;
  /**
   * Applies a reloaded config: new connection settings of `agent:` reconnect the agent at once;
   * any other change of `gateway:` or `agent:` is logged as needing a restart and not applied.
   * Rejects (nothing applied) when the agent's new CA file cannot be read.
   */
  reload(next: SluiceConfig): Promise<void>;
  close(): Promise<void>;
}

export interface ExposureDeps {
  readonly clock: Clock;
  readonly events: EventStream;
  readonly log: Logger;
  readonly routeDeps: RouteDepsSource;
  readonly nextFlowId: () => number;
  /** The agent's dialer toward local UDP services (the node's, so it uses the same datapath). */
  readonly datagramDialer?: DatagramDialer;
  /** The node's UDP datapath, for the gateway's shared port and the agent's socket. */
  readonly datapath?: UdpDatapath;
  /** The ban list's verdict on a source, for the gateway's agent endpoint. */
  readonly banned?: (client: Endpoint) => string | undefined;
}

/** At most this many lines per minute for refused handshakes (the counters keep every one). */
const REFUSAL_LINES_PER_MINUTE = 20;

/**
 * Starts `gateway:` and `agent:` of a config. The gateway prints its certificate fingerprint on
 * every start (warn level on the start that generated it: operators must pin it on agents).
 * Tokens, digests and keys are never logged (threats-and-tests EXP-4).
 */
export async function startExposure(config: SluiceConfig, deps: ExposureDeps): Promise<Exposure> {
  const { log, clock } = deps;
  let gateway: Gateway | undefined;
  let agent: Agent | undefined;
  if (config.gateway) {
    let window = 0;
    let lines = 0;
    let suppressed = 0;
    gateway = await Gateway.start(config.gateway, {
      clock,
      events: deps.events,
      routeDeps: deps.routeDeps,
      datapath: deps.datapath,
      ...(deps.banned ? { banned: deps.banned } : {}),
      observer: {
        started: (e) => {
          const fields = { tcp: e.tcp, udp: e.udp, fingerprint: e.fingerprint, certificate: e.certPath };
          if (e.generated) log.warn(fields, `gateway: generated a certificate; pin it on agents with fingerprint: ${e.fingerprint}`);
          else log.info(fields, `gateway listening, fingerprint: ${e.fingerprint}`);
        },
        authRefused: (e) => {
          const minute = Math.floor(clock.now() / 60_000);
          if (minute !== window) {
            if (suppressed > 0) log.warn({ suppressed }, 'gateway: more refused handshakes were not logged (see counters)');
            window = minute;
            lines = 0;
            suppressed = 0;
          }
          if (++lines > REFUSAL_LINES_PER_MINUTE) return void suppressed++;
          log.warn({ remote: e.remote, agent: e.agent, reason: e.failure }, `gateway: refused an agent connection: ${e.message}`);
        },
        agentUp: (e) => log.info({ agent: e.agent, remote: e.remote, resumed: e.resumed, keyId: e.keyId }, 'gateway: agent connected'),
        agentDown: (e) => log.info({ agent: e.agent, reason: e.reason }, 'gateway: agent connection lost; keeping its services for the resume grace period'),
        agentGone: (e) => log.info({ agent: e.agent, reason: e.reason }, 'gateway: agent gone; its services are closed'),
        published: (e) => log.info({ agent: e.agent, service: e.service, transport: e.transport, bound: e.bound }, 'gateway: service published'),
        publishRefused: (e) => log.warn({ agent: e.agent, service: e.service, reason: e.code }, `gateway: refused to publish: ${e.message}`),
      },
    });
  }
  if (config.agent) {
    try {
      agent = await Agent.start(config.agent, {
        clock,
        events: deps.events,
        nextFlowId: deps.nextFlowId,
        datagramDialer: deps.datagramDialer,
        datapath: deps.datapath,
        routeDeps: deps.routeDeps,
        observer: {
          peerChanged: (l) =>
            log.info({ peer: l.peer, state: l.shownState, path: l.path, reason: l.diagnosis().reason }, `agent: peer ${l.peer} ${l.shownState}${l.shownState === 'connected' ? ` (${l.path})` : ''}`),
          connected: (e) => log.info({ gateway: e.gateway, resumed: e.resumed }, 'agent: connected to the gateway'),
          disconnected: (e) => log.warn({ reason: e.failure, retryInMs: e.retryInMs }, `agent: not connected: ${e.message}`),
          published: (e) => log.info({ service: e.service, bound: e.bound }, 'agent: service published'),
          publishRefused: (e) => log.error({ service: e.service, reason: e.code }, `agent: the gateway refused to publish: ${e.message}`),
          datagramMode: (e) =>
            log.info({ mode: e.mode }, e.mode === 'udp' ? 'agent: datagrams go over UDP' : 'agent: UDP to the gateway does not answer; datagrams go over the TLS connection'),
        },
      });
    } catch (err) {
      await gateway?.close();
      throw err;
    }
  }
  const registries = new WeakSet<Registry>();
  return {
    gateway,
    agent,
    routes: () => [...(gateway?.agents().flatMap((l) => [...l.services.values()].map((s) => s.route)) ?? []), ...(agent?.connectRoutes ?? [])],
    exposeMetrics: (registry) => {
      if (!registry || (!gateway && !agent) || registries.has(registry)) return;
      registries.add(registry);
      registerExposeMetrics(registry, () => ({ gateway, agent }));
    },
    reload: async (next) => {
      const was = agent?.config;
      const change = was && next.agent ? agentChange(was, next.agent) : was === next.agent ? 'none' : 'restart';
      if (change === 'connection') {
        await agent!.updateConnection(next.agent!);
        log.info({ gateway: formatHostPort(next.agent!.gateway.host, next.agent!.gateway.port) }, 'agent: connection settings reloaded; reconnecting');
      } else if (change === 'restart') {
        log.warn('agent: this change of agent: (other than gateway, token, fingerprint, ca, serverName, reconnect) takes effect after a restart');
      }
      if (!isDeepStrictEqual(config.gateway, next.gateway)) log.warn('gateway: changes of gateway: take effect after a restart');
    },
    close: async () => {
      await agent?.close();
      await gateway?.close();
      if (gateway) log.info({ counters: gateway.counters }, 'gateway: stopped');
      if (agent) log.info({ counters: agent.counters, datagrams: agent.datagramCounters }, 'agent: stopped');
    },
  };
}
