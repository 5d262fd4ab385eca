import type { TestContext } from 'node:test';
import type net from 'node:net';
import { tcpConnect, tcpServer, waitFor } from '../helpers/net.js';
import type { startNode as startNodeOn } from '../helpers/node.js';

/** One TCP route `app` on 127.0.0.1, port 0, to `upstream`. */
export const appRoute = (upstream: number) => `
routes:
  app:
    listen: tcp://127.0.0.1:0
    upstream: 127.0.0.1:${upstream}
`;

/**
 * A node (from `startNode`, whichever datapath it runs) relaying a client `c` to an upstream
 * socket `u`. `paused`: `u` reads nothing until resumed, so the relay's writes to it block and its
 * pipe fills.
 */
export async function relayedPair(t: TestContext, startNode: typeof startNodeOn, paused = false) {
  const side: { sock?: net.Socket } = {};
  const up = await tcpServer(t, (s) => {
    side.sock = s;
    if (paused) s.pause();
  });
  const n = await startNode(t, appRoute(up.port));
  const c = await tcpConnect(t, n.port('app'));
  await waitFor(() => side.sock !== undefined, 'upstream accepted');
  return { n, c, u: side.sock! };
}
