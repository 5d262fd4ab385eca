import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sleep, waitFor } from '../helpers/net.js';
import { runSluice } from '../helpers/cli.js';
import { tempDir } from '../helpers/peers.js';
import { gatewayConfig, startGateway, TOKEN } from '../gateway/expose-helpers.js';

test('cli: an agent refused by the gateway (no admin listener) keeps retrying, and connects after the token is fixed and SIGHUP', async (t) => {
  // No auth backoff on the gateway: the test is about the agent's own retries.
  const gw = await startGateway(t, gatewayConfig('  authBackoff: { after: 1000 }\n'));
  const dir = await tempDir(t);
  const file = join(dir, 'agent.yaml');
  const yaml = (token: string) => `agent:
  name: home
  gateway: 127.0.0.1:${gw.port}
  token: "${token}"
  fingerprint: ${gw.fingerprint}
  reconnect: { initial: 100ms, max: 400ms }
  expose:
    echo: { local: 127.0.0.1:9, remote: udp://127.0.0.1:0 }
accessLog: { output: off }
`;
  await writeFile(file, yaml('a-wrong-token-0123456789'));
  const p = runSluice(t, ['run', '--config', file]);
  const refusals = () => gw.rec.of('gateway-auth-refused').filter((e) => e.agent === 'home').length;
  await waitFor(() => refusals() >= 1, 'a first refused attempt');
  await sleep(3000);
  assert.equal(p.child.exitCode, null, `the agent exited after being refused:\n${p.err()}`);
  const before = refusals();
  await waitFor(() => refusals() > before, 'a refused attempt after 3 s (still retrying)');
  assert.equal(gw.gateway.agents().length, 0);

  await writeFile(file, yaml(TOKEN));
  p.child.kill('SIGHUP');
  await waitFor(() => gw.rec.of('gateway-agent-up').some((e) => e.agent === 'home'), 'the agent to connect with the fixed token');
  await waitFor(() => gw.gateway.agents().some((a) => a.name === 'home'), 'the agent link on the gateway');

  p.child.kill('SIGTERM');
  assert.equal(await p.exited, 0, p.err());
});
