import { formatListen, type Endpoint } from '../core/address.js';
import type { Clock } from '../core/clock.js';
import { SluiceError, errnoCode } from '../core/errors.js';
import type { ConnectConfig } from '../config/expose-config.js';
import type { EventStream } from '../observe/events.js';
import type { RouteRuntime } from '../listen/route.js';
import type { ListenerConfig } from '../session/session-policy.js';
import { TcpRoute } from '../listen/tcp-route.js';
import { UdpRoute } from '../listen/udp-route.js';
import type { RouteDepsSource } from '../listen/route.js';
import { PeerDatagramDialer, PeerStreamDialer, type PeerFlows } from '../upstream/peer/peer-dialer.js';

export interface ConnectListenerDeps {
  readonly clock: Clock;
  readonly events: EventStream;
  readonly routeDeps?: RouteDepsSource;
  readonly nextFlowId: () => number;
}

/** The route name of a connect entry in the access log, flow records and metrics. */
export const connectRouteName = (c: ConnectConfig) => `connect/${c.name}`;

/**
 * The local listeners of `agent.connect` (docs/connect.md): ordinary routes (sessions, caps, idle
 * timeouts, the access log and flow records) whose upstream is the peer's service. They are bound
 * from the start; no peer path exists until the first datagram or connection (the dialers never
 * wait: a flow queues, bounded, until a path takes it). A listener that cannot bind fails the
 * start, named.
 */
export async function startConnectListeners(configs: readonly ConnectConfig[], flows: PeerFlows, deps: ConnectListenerDeps): Promise<RouteRuntime[]> {
  const started: RouteRuntime[] = [];
  try {
    for (const c of configs) {
      const name = connectRouteName(c);
      // No ACL and no PROXY protocol: the listener is local to the agent; its sessions reach the peer's service by name.
      const route: ListenerConfig = { name, listen: c.listen, upstream: `${c.peer}/${c.service}`, udp: c.udp, tcp: c.tcp, acl: undefined, proxyProtocol: undefined };
      const rd = deps.routeDeps?.(route);
      const target = { name: c.name, peer: c.peer, service: c.service, path: c.path };
      const base = { clock: deps.clock, events: deps.events, admit: rd?.admit, nextFlowId: rd?.nextFlowId ?? deps.nextFlowId };
      let r: RouteRuntime;
      try {
        r =
          c.listen.transport === 'udp'
            ? await UdpRoute.start(route, { ...base, datapath: rd?.datapath, dialer: new PeerDatagramDialer(flows, target) })
            : await TcpRoute.start(route, { ...base, streamDatapath: rd?.streamDatapath, dialer: new PeerStreamDialer(flows, target) });
      } catch (err) {
        const code = errnoCode(err instanceof SluiceError ? err.cause : err) ?? (err as Error).message;
        throw new SluiceError('SLUICE_ERR_BIND', `agent.connect.${c.name}.listen: cannot listen on ${formatListen(c.listen)}: ${code}`, { cause: err });
      }
      started.push(r);
      deps.events.emit({ type: 'route-up', at: deps.clock.wallNow(), route: name, listen: formatListen({ ...c.listen, port: r.local.port }), address: r.local as Endpoint });
    }
  } catch (err) {
    await Promise.all(started.map((r) => r.close('shutdown')));
    throw err;
  }
  return started;
}
