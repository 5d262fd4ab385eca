import type { Clock } from '../core/clock.js';
import type { EventStream } from '../observe/events.js';
import type { GatewayObserver } from '../gateway/gateway.js';
import type { AgentObserver } from '../agent/agent.js';

/**
 * The gateway's and the agent's reports as typed events on the one stream: each observer call
 * becomes one event, stamped with the wall clock. The process log renders them
 * (ops/exposure-log.ts); peer link changes are already `peer-path` events of the agent.
 */
export function gatewayReports(events: EventStream, clock: Clock): GatewayObserver {
  const at = () => clock.wallNow();
  return {
    started: (e) => events.emit({ type: 'gateway-started', at: at(), ...e }),
    authRefused: (e) => events.emit({ type: 'gateway-auth-refused', at: at(), ...e }),
    agentUp: (e) => events.emit({ type: 'gateway-agent-up', at: at(), ...e }),
    agentDown: (e) => events.emit({ type: 'gateway-agent-down', at: at(), ...e }),
    agentGone: (e) => events.emit({ type: 'gateway-agent-gone', at: at(), ...e }),
    published: (e) => events.emit({ type: 'gateway-published', at: at(), ...e }),
    publishRefused: (e) => events.emit({ type: 'gateway-publish-refused', at: at(), ...e }),
  };
}

export function agentReports(events: EventStream, clock: Clock): Omit<AgentObserver, 'peerChanged'> {
  const at = () => clock.wallNow();
  return {
    connected: (e) => events.emit({ type: 'agent-connected', at: at(), gateway: e.gateway, resumed: e.resumed }),
    disconnected: (e) => events.emit({ type: 'agent-disconnected', at: at(), ...e }),
    published: (e) => events.emit({ type: 'agent-published', at: at(), ...e }),
    publishRefused: (e) => events.emit({ type: 'agent-publish-refused', at: at(), ...e }),
    datagramMode: (e) => events.emit({ type: 'agent-datagram-mode', at: at(), ...e }),
  };
}
