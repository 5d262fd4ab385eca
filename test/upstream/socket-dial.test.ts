import { test, type TestContext } from 'node:test';
import type net from 'node:net';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { isSluiceError, type SluiceError } from '../../src/core/errors.js';
import { DirectStreamDialer } from '../../src/upstream/direct/tcp-dialer.js';
import type { DialedConn } from '../../src/upstream/direct/socket-dial.js';
import type { StreamDatapath } from '../../src/datapath/stream-datapath.js';
import { streamDatapathCases } from '../datapath/stream-datapaths.js';
import { readAll, refusedPort, sleep, tcpServer } from '../helpers/net.js';

// The dial a route on the native stream datapath makes for an IP-literal upstream: pinned and
// checked at once, no promise; `done` once and never before dialConn returns; cancel closes.
for (const c of streamDatapathCases()) {
  const run = (name: string, fn: (t: TestContext, dp: StreamDatapath) => Promise<void>) =>
    test(`dialConn literal: ${name} [${c.kind}]`, { skip: c.skip ?? false }, (t) => {
      assert.ok(c.datapath, 'CI=true: the native stream datapath must load');
      return fn(t, c.datapath);
    });
  const opts = (timeoutMs = 2000) => ({ signal: new AbortController().signal, timeoutMs });

  run('connects and the connection carries bytes; done comes after dialConn returned', async (t, dp) => {
    const up = await tcpServer(t);
    let returned = false;
    const dialed = await new Promise<DialedConn>((resolve, reject) => {
      new DirectStreamDialer().dialConn({ host: '127.0.0.1', port: up.port }, opts(), dp, (err, d) => {
        assert.ok(returned, 'done ran inside dialConn');
        if (err) reject(err);
        else resolve(d!);
      });
      returned = true;
    });
    assert.deepEqual(dialed.remote, { address: '127.0.0.1', port: up.port, family: 4 });
    const s = dialed.conn.socket();
    s.resume();
    s.end('ping');
    assert.equal((await readAll(s)).toString(), 'ping');
  });

  run('a refused port fails with SLUICE_ERR_DIAL_FAILED naming ECONNREFUSED', async (t, dp) => {
    const dead = await refusedPort(t);
    const err = await new Promise<SluiceError | undefined>((resolve) => new DirectStreamDialer().dialConn({ host: '127.0.0.1', port: dead }, opts(), dp, resolve));
    assert.ok(isSluiceError(err, 'SLUICE_ERR_DIAL_FAILED'), String(err));
    assert.match(err!.message, new RegExp(`127\\.0\\.0\\.1:${dead} failed: ECONNREFUSED`));
  });

  run('a literal outside the destination policy is refused before any socket, after dialConn returned', async (t, dp) => {
    let returned = false;
    const err = await new Promise<SluiceError | undefined>((resolve) => {
      new DirectStreamDialer(undefined, { policy: ['public'] }).dialConn({ host: '127.0.0.1', port: 1 }, opts(), dp, (e) => {
        assert.ok(returned, 'done ran inside dialConn');
        resolve(e);
      });
      returned = true;
    });
    assert.ok(isSluiceError(err, 'SLUICE_ERR_DESTINATION_DENIED'), String(err));
  });

  run('one target object dialed again: the same canonical address, and the policy of each dial still applies', async (t, dp) => {
    const up = await tcpServer(t);
    const target = { host: '::ffff:127.0.0.1', port: up.port };
    const dial = (policy?: ['public']) =>
      new Promise<{ err: SluiceError | undefined; dialed?: DialedConn }>((resolve) => new DirectStreamDialer(undefined, policy ? { policy } : {}).dialConn(target, opts(), dp, (err, dialed) => resolve({ err, dialed })));
    for (let i = 0; i < 2; i++) {
      const ok = await dial();
      assert.equal(ok.err, undefined);
      assert.deepEqual(ok.dialed!.remote, { address: '127.0.0.1', port: up.port, family: 4 });
      ok.dialed!.conn.destroy();
      const denied = await dial(['public']);
      assert.ok(isSluiceError(denied.err, 'SLUICE_ERR_DESTINATION_DENIED'), `dial ${i}: ${String(denied.err)}`);
    }
  });

  run('cancel: done is never called, and a connection the upstream got is closed', async (t, dp) => {
    const accepted: net.Socket[] = [];
    const up = await tcpServer(t, (s) => accepted.push(s));
    let called = false;
    const dialing = new DirectStreamDialer().dialConn({ host: '127.0.0.1', port: up.port }, opts(), dp, () => (called = true))!;
    // Cancelled while the connect is in flight: on native the kernel may already have completed
    // it (loopback), on js it has not started; either way nothing may be left open.
    dialing.cancel();
    dialing.cancel();
    await sleep(100);
    assert.ok(accepted.length <= 1);
    for (const s of accepted) {
      s.resume();
      if (!s.readableEnded) await once(s, 'end');
    }
    assert.equal(called, false);
  });
}
