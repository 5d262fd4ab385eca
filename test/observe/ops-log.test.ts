import { test } from 'node:test';
import assert from 'node:assert/strict';
import { udpEcho } from '../helpers/net.js';
import { startApp } from '../admin/app-helper.js';

test('ops log: ISO 8601 time like the access log; route up and route down name the bound address, not the configured :0', async (t) => {
  const echo = await udpEcho(t);
  const s = await startApp(
    t,
    `
routes:
  dns: { listen: udp://127.0.0.1:0, upstream: 127.0.0.1:${echo.port} }
accessLog: { output: off }
lifecycle: { drainTimeout: 100ms }
`,
  );
  const bound = `127.0.0.1:${s.port('dns')}`;
  await s.stop();
  const lines = s
    .logs()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.ok(lines.length > 0);
  for (const l of lines) assert.match(String(l.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, `time of ${JSON.stringify(l)}`);
  const up = lines.find((l) => l.msg === 'route up')!;
  const down = lines.find((l) => l.msg === 'route down')!;
  assert.deepEqual([up.route, up.listen, up.address], ['dns', 'udp://127.0.0.1:0', bound]);
  assert.deepEqual([down.route, down.listen, down.address], ['dns', 'udp://127.0.0.1:0', bound]);
});
