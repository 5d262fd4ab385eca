import type { TestContext } from 'node:test';
import { TOKEN } from '../gateway/expose-helpers.js';
import { connected, peerAgentConfig, peerGatewayConfig, startAgent, startGateway, udpEcho } from '../connect/connect-helpers.js';
import { startApp, tempDir } from './app-helper.js';

/**
 * A gateway and `home` (exposing wg to laptop) in this process, and laptop as a whole App with an
 * admin listener. `connect` is the YAML body of `agent.connect` (4-space indented entries); `extra`
 * gives top-level keys (access log, flow log) of laptop's config, with files in the test's `dir`.
 */
export async function peerApps(t: TestContext, connect: string, extra: (dir: string) => string = () => 'accessLog: { output: off }\n') {
  const dir = await tempDir(t, 'sluice-peer-app-');
  const gw = await startGateway(t, peerGatewayConfig(dir));
  const echo = await udpEcho(t);
  const home = await startAgent(t, peerAgentConfig(gw, 'home', `  expose:\n    wg: { local: 127.0.0.1:${echo.port}, peers: [laptop] }\n`));
  const s = await startLaptopApp(t, gw, connect, extra(dir));
  const agent = s.app.exposure!.agent!;
  await connected(home.agent);
  await connected(agent);
  return { dir, gw, echo, home, s, agent, listen: agent.connectRoutes[0]!.local.port };
}

/** `laptop` as a whole App with an admin listener: `connect` as in peerApps, `extra` top-level YAML. */
export function startLaptopApp(t: TestContext, gw: { port: number; fingerprint: string }, connect: string, extra: string) {
  return startApp(
    t,
    `
agent:
  name: laptop
  gateway: 127.0.0.1:${gw.port}
  token: "${TOKEN}"
  fingerprint: ${gw.fingerprint}
  reconnect: { initial: 50ms, max: 500ms }
  peerCandidates: [loopback]
  connect:
${connect}
${extra}admin: { listen: 127.0.0.1:0 }
lifecycle: { drainTimeout: 1s }
`,
  );
}
