import dgram from 'node:dgram';
import { once } from 'node:events';
import type { TestContext } from 'node:test';
import { parseConfig } from '../../src/config/load.js';
import type { AgentConfig, GatewayConfig } from '../../src/config/expose-config.js';
import type { Agent } from '../../src/agent/agent.js';
import { TOKEN, startAgent, startGateway } from '../gateway/expose-helpers.js';
import { waitFor } from '../helpers/net.js';

/** A gateway that knows agents home and laptop (and `other`, who is offered nothing). */
export function peerGatewayConfig(stateDir: string): GatewayConfig {
  const yaml = `gateway:
  listen: 127.0.0.1:0
  stateDir: ${stateDir}
  keepaliveInterval: 1s
  agents:
    home: { token: "${TOKEN}" }
    laptop: { token: "${TOKEN}" }
    other: { token: "${TOKEN}" }
  ports: 1024-65535
`;
  const r = parseConfig(yaml);
  if (!r.ok) throw new Error(`gateway config: ${JSON.stringify(r.issues)}`);
  return r.config.gateway!;
}

/** `agent:` of `name` with the given extra YAML (two-space indented keys under agent). */
export function peerAgentConfig(gw: { port: number; fingerprint: string }, name: string, body: string): AgentConfig {
  const yaml = `agent:
  name: ${name}
  gateway: 127.0.0.1:${gw.port}
  token: "${TOKEN}"
  fingerprint: ${gw.fingerprint}
  reconnect: { initial: 50ms, max: 500ms }
  peerCandidates: [loopback]
${body}`;
  const r = parseConfig(yaml);
  if (!r.ok) throw new Error(`agent config: ${JSON.stringify(r.issues)}`);
  return r.config.agent!;
}

/** A UDP echo server on 127.0.0.1 that counts what it saw. */
export async function udpEcho(t: TestContext) {
  const s = dgram.createSocket('udp4');
  const seen: string[] = [];
  s.on('message', (m, r) => {
    seen.push(m.toString());
    s.send(m, r.port, r.address);
  });
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  t.after(() => s.close());
  return { port: s.address().port, seen };
}

/** A client socket that collects replies. */
export async function udpClient(t: TestContext) {
  const s = dgram.createSocket('udp4');
  const got: string[] = [];
  s.on('message', (m) => got.push(m.toString()));
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  t.after(() => s.close());
  return { socket: s, got, send: (text: string, port: number) => s.send(text, port, '127.0.0.1') };
}

export async function connected(agent: Agent, timeoutMs = 5000): Promise<void> {
  await waitFor(() => agent.state === 'connected', `${agent.config.name} connected`, timeoutMs);
}

export { startAgent, startGateway };
