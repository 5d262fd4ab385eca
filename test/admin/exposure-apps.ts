import type { TestContext } from 'node:test';
import { TOKEN } from '../gateway/expose-helpers.js';
import { startApp, tempDir } from './app-helper.js';

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
