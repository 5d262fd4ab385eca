import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nativeStreamCase } from './stream-datapaths.js';

// The stream engine's listen and dial open their sockets through the same preamble as the UDP
// engine's (OpenSocket in native/src/napi-util.h): a host that is not an IP literal is EINVAL from
// the call it was for, never a crash or a socket.
const c = nativeStreamCase();

test('native stream engine: listen and dial on a host that is not an IP literal fail with EINVAL from bind and connect', { skip: c.skip ?? false }, async () => {
  const dp = c.datapath;
  if (!dp) throw new Error('CI=true: the native stream datapath must load (node native/build.mjs)');
  await assert.rejects(dp.listen('not-an-ip', 0, () => {}), (err: Error & { code?: string; syscall?: string }) => err.code === 'EINVAL' && err.syscall === 'bind');
  const err = await new Promise<Error & { code?: string; syscall?: string }>((resolve) => dp.dial({ address: 'not-an-ip', port: 80, family: 4 }, 1000, (e) => resolve(e!)));
  assert.equal(err.code, 'EINVAL');
  assert.equal(err.syscall, 'connect');
  // The engine still works afterwards.
  const l = await dp.listen('127.0.0.1', 0, (conn) => conn.destroy());
  assert.ok(l.local.port > 0);
  await l.close();
});
