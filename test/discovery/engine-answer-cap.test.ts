import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { EngineError, UnixSocketEngine } from '../../src/discovery/engine-client.js';

test('an engine answer larger than the cap fails the request instead of being held in memory', async (t) => {
  const dir = mkdtempSync('/tmp/sluice-engine-cap-');
  const socketPath = join(dir, 'engine.sock');
  const list = JSON.stringify(Array.from({ length: 300 }, (_, i) => ({ Id: `id${i}`, State: 'exited', Labels: { filler: 'x'.repeat(100) } })));
  const server = http.createServer((_req, res) => res.end(list));
  server.listen(socketPath);
  await once(server, 'listening');
  t.after(() => {
    server.closeAllConnections();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const signal = new AbortController().signal;
  await assert.rejects(new UnixSocketEngine(socketPath, undefined, 16 * 1024).listRunning(signal), (err) => {
    assert.ok(err instanceof EngineError);
    assert.match(err.message, /larger than 16384 bytes/);
    return true;
  });
  assert.deepEqual(await new UnixSocketEngine(socketPath, undefined, list.length).listRunning(signal), []);
});
