import type { TestContext } from 'node:test';
import { startApp, tempDir } from '../admin/app-helper.js';
import type { RedisPeer } from '../helpers/redis.js';
import type { SluiceEvent } from '../../src/observe/events.js';

const TOKEN = 'home-token-0123456789abcdef';
export const ADMIN = 'admin-token-0123456789abcdef';
export const auth = { authorization: `Bearer ${ADMIN}` };

/** A gateway node in a fleet with one ordinary TCP route `echo` to `upstream` and an admin listener. */
export async function gatewayNode(t: TestContext, redis: RedisPeer, name: string, upstream: number, fleetExtra = '') {
  const dir = await tempDir(t, 'sluice-fleet-');
  const a = await startApp(
    t,
    `
accessLog: { output: 'off' }
admin: { listen: 127.0.0.1:0, token: ${ADMIN} }
gateway:
  listen: 127.0.0.1:0
  stateDir: ${dir}
  agents:
    home: { token: "${TOKEN}" }
  ports: 1024-65535
  fleet:
    redis: ${redis.url}
    name: ${name}
    heartbeat: 200ms
    ttl: 1s
${fleetExtra}
routes:
  echo:
    listen: tcp://127.0.0.1:0
    upstream: 127.0.0.1:${upstream}
`,
  );
  const seen: SluiceEvent[] = [];
  a.app.events.subscribe((e) => seen.push(e));
  const rejected = () => seen.filter((e): e is Extract<SluiceEvent, { type: 'session-rejected' }> => e.type === 'session-rejected');
  return { ...a, seen, rejected, echoPort: a.port('echo') };
}

