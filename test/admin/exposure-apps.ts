import type { TestContext } from 'node:test';
import { TOKEN } from '../gateway/expose-helpers.js';
import { startApp, tempDir } from './app-helper.js';
import { tcpServer, udpEcho, waitFor } from '../helpers/net.js';

/** A whole App running `gateway:` (agent `home` may use any port), with `extra` top-level YAML (admin, logs). */
export async function startGatewayApp(t: TestContext, extra = 'accessLog: { output: off }\nadmin: { listen: 127.0.0.1:0 }\n') {
  const dir = await tempDir(t, 'sluice-gateway-app-');
  const s = await startApp(
    t,
    `
gateway:
  listen: 127.0.0.1:0
  stateDir: ${dir}
  agents:
    home: { token: "${TOKEN}" }
  ports: 1024-65535
lifecycle: { drainTimeout: 1s }
${extra}`,
  );
  return { ...s, gateway: s.app.exposure!.gateway! };
}

/**
 * A whole App running agent `home` against `gateway`, exposing `expose` (the YAML entries of
 * `agent.expose`, 4-space indented), with an admin listener.
 */
export async function startAgentApp(t: TestContext, gateway: { tcpAddress: { port: number }; fingerprint: string }, expose: string) {
  const s = await startApp(
    t,
    `
agent:
  name: home
  gateway: 127.0.0.1:${gateway.tcpAddress.port}
  token: "${TOKEN}"
  fingerprint: ${gateway.fingerprint}
  reconnect: { initial: 50ms, max: 500ms }
  expose:
${expose}
accessLog: { output: off }
admin: { listen: 127.0.0.1:0 }
lifecycle: { drainTimeout: 1s }
`,
  );
  return { ...s, agent: s.app.exposure!.agent! };
}

/** A gateway App and an agent App (each with its admin listener), the agent publishing `echou` (UDP) and `echot` (TCP). */
export async function gatewayAndAgent(t: TestContext) {
  const echo = await udpEcho(t);
  const tcpEcho = await tcpServer(t);
  const gw = await startGatewayApp(t);
  const agentApp = await startAgentApp(t, gw.gateway, `    echou: { local: 127.0.0.1:${echo.port}, remote: udp://127.0.0.1:0 }\n    echot: { local: 127.0.0.1:${tcpEcho.port}, remote: tcp://127.0.0.1:0 }`);
  const agent = agentApp.agent;
  await waitFor(() => agent.state === 'connected' && agent.services().every((s) => s.bound !== undefined), 'services published');
  const port = (name: string) => agent.services().find((s) => s.config.name === name)!.bound!.port;
  return { gw, agentApp, agent, port };
}
