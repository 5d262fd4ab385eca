import assert from 'node:assert/strict';
import { perStreamDatapath } from '../datapath/stream-datapaths.js';
import { tcpConnect, tcpServer, waitFor } from '../helpers/net.js';

// On both stream datapaths: "name [js]" and "name [native]".
const { test, startNode } = perStreamDatapath();

test('tcp route: live connections are listed oldest first, also after the oldest one ended', async (t) => {
  const up = await tcpServer(t, (s) => s.pipe(s));
  const n = await startNode(t, `
routes:
  svc:
    listen: tcp://127.0.0.1:0
    upstream: 127.0.0.1:${up.port}
`);
  const route = n.node.route('svc')!;
  let opened = 0;
  const open = async () => {
    const c = await tcpConnect(t, n.port('svc'));
    const k = ++opened;
    await waitFor(() => n.ofType('session-started').length === k, 'session started');
    return c;
  };
  const first = await open();
  const second = await open();
  const third = await open();
  assert.equal(route.active, 3);
  first.end();
  await waitFor(() => n.ofType('session-ended').length === 1, 'the first one ended');
  const fourth = await open();
  assert.equal(route.active, 3);
  const ids = route.sessions().map((s) => s.id);
  const started = n.ofType('session-started').map((e) => e.flow.id);
  assert.deepEqual(ids, started.slice(1), 'the three live ones, in the order they started');
  for (const c of [second, third, fourth]) c.destroy();
});
