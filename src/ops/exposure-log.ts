import type { Logger } from 'pino';
import type { Sink } from '../observe/events.js';

/** At most this many lines per minute for refused handshakes (the counters keep every one). */
const REFUSAL_LINES_PER_MINUTE = 20;

/**
 * The process log's lines about the gateway and the agent (docs/expose.md), from their events on
 * the one stream. The gateway prints its certificate fingerprint on every start (warn level on
 * the start that generated it: operators must pin it on agents). Tokens, digests and keys are
 * never in an event, so never logged (threats-and-tests EXP-4).
 */
export function exposureLogSink(log: Logger, clock: { now(): number }): Sink {
  let window = 0;
  let lines = 0;
  let suppressed = 0;
  return (e) => {
    switch (e.type) {
      case 'gateway-started': {
        const fields = { tcp: e.tcp, udp: e.udp, fingerprint: e.fingerprint, certificate: e.certPath };
        if (e.generated) log.warn(fields, `gateway: generated a certificate; pin it on agents with fingerprint: ${e.fingerprint}`);
        else log.info(fields, `gateway listening, fingerprint: ${e.fingerprint}`);
        return;
      }
      case 'gateway-auth-refused': {
        const minute = Math.floor(clock.now() / 60_000);
        if (minute !== window) {
          if (suppressed > 0) log.warn({ suppressed }, 'gateway: more refused handshakes were not logged (see counters)');
          window = minute;
          lines = 0;
          suppressed = 0;
        }
        if (++lines > REFUSAL_LINES_PER_MINUTE) return void suppressed++;
        log.warn({ remote: e.remote, agent: e.agent, reason: e.failure }, `gateway: refused an agent connection: ${e.message}`);
        return;
      }
      case 'gateway-agent-up':
        return void log.info({ agent: e.agent, remote: e.remote, resumed: e.resumed, keyId: e.keyId }, 'gateway: agent connected');
      case 'gateway-agent-down':
        return void log.info({ agent: e.agent, reason: e.reason }, 'gateway: agent connection lost; keeping its services for the resume grace period');
      case 'gateway-agent-gone':
        return void log.info({ agent: e.agent, reason: e.reason }, 'gateway: agent gone; its services are closed');
      case 'gateway-published':
        return void log.info({ agent: e.agent, service: e.service, transport: e.transport, bound: e.bound }, 'gateway: service published');
      case 'gateway-publish-refused':
        return void log.warn({ agent: e.agent, service: e.service, reason: e.code }, `gateway: refused to publish: ${e.message}`);
      case 'peer-path':
        return void log.info({ peer: e.peer, state: e.state, path: e.path, reason: e.reason }, `agent: peer ${e.peer} ${e.state}${e.state === 'connected' ? ` (${e.path})` : ''}`);
      case 'agent-connected':
        return void log.info({ gateway: e.gateway, resumed: e.resumed }, 'agent: connected to the gateway');
      case 'agent-disconnected':
        return void log.warn({ reason: e.failure, retryInMs: e.retryInMs }, `agent: not connected: ${e.message}`);
      case 'agent-published':
        return void log.info({ service: e.service, bound: e.bound }, 'agent: service published');
      case 'agent-publish-refused':
        return void log.error({ service: e.service, reason: e.code }, `agent: the gateway refused to publish: ${e.message}`);
      case 'agent-datagram-mode':
        return void log.info({ mode: e.mode }, e.mode === 'udp' ? 'agent: datagrams go over UDP' : 'agent: UDP to the gateway does not answer; datagrams go over the TLS connection');
      default:
        return;
    }
  };
}
