import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { Writable } from 'node:stream';
import { ManualClock } from '../helpers/manual-clock.js';
import type { SluiceEvent } from '../../src/observe/events.js';
import { exposureLogSink } from '../../src/ops/exposure-log.js';
import { waitFor } from '../helpers/net.js';
import { startAgentApp, startGatewayApp } from '../admin/exposure-apps.js';

const json = (logs: string) =>
  logs
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

test('gateway and agent report through events on the one stream; the process log shows the same lines as before', async (t) => {
  const gw = await startGatewayApp(t);
  const seen: SluiceEvent[] = [];
  gw.app.events.subscribe((e) => seen.push(e));
  const agent = await startAgentApp(t, gw.gateway, '    echo: { local: 127.0.0.1:9, remote: tcp://127.0.0.1:0 }');
  await waitFor(() => json(gw.logs()).some((l) => l.msg === 'gateway: service published'), 'published line');
  await waitFor(() => json(agent.logs()).some((l) => l.msg === 'agent: service published'), 'agent published line');
  const started = json(gw.logs()).find((l) => typeof l.msg === 'string' && l.msg.startsWith('gateway: generated a certificate'))!;
  assert.equal(started.fingerprint, gw.gateway.fingerprint);
  assert.equal(started.level, 40, 'warn on the start that generated the certificate');
  const up = json(gw.logs()).find((l) => l.msg === 'gateway: agent connected')!;
  assert.deepEqual([up.agent, up.resumed], ['home', false]);
  assert.ok(json(agent.logs()).some((l) => l.msg === 'agent: connected to the gateway' && l.resumed === false));
  // The events behind the lines are typed and on the gateway's stream.
  const published = seen.find((e) => e.type === 'gateway-published');
  assert.ok(published && published.type === 'gateway-published');
  assert.deepEqual([published.agent, published.service, published.transport], ['home', 'echo', 'tcp']);
  await agent.stop();
  await waitFor(() => seen.some((e) => e.type === 'gateway-agent-down' || e.type === 'gateway-agent-gone'), 'agent down event');
});

test('refused handshakes: at most 20 lines a minute, then one line with how many were not logged', () => {
  let out = '';
  const log = pino({ base: undefined }, new Writable({ write: (c, _e, cb) => ((out += String(c)), cb()) }) as never);
  const clock = new ManualClock();
  const sink = exposureLogSink(log, clock);
  const refused = (): SluiceEvent => ({ type: 'gateway-auth-refused', at: clock.wallNow(), remote: { address: '192.0.2.1', port: 1, family: 'IPv4' } as never, agent: 'home', failure: 'wrong-token', message: 'the token for agent "home" is wrong' });
  for (let i = 0; i < 25; i++) sink(refused());
  clock.advance(60_000);
  sink(refused());
  const lines = json(out);
  assert.equal(lines.filter((l) => l.msg === 'gateway: refused an agent connection: the token for agent "home" is wrong').length, 21);
  const summary = lines.find((l) => l.msg === 'gateway: more refused handshakes were not logged (see counters)')!;
  assert.equal(summary.suppressed, 5);
});
