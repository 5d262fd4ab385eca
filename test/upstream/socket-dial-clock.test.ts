import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isSluiceError } from '../../src/core/errors.js';
import { DirectStreamDialer } from '../../src/upstream/direct/tcp-dialer.js';
import { streamDatapathCases } from '../datapath/stream-datapaths.js';
import { ManualClock } from '../helpers/manual-clock.js';
import type { DialOptions } from '../../src/upstream/dialer.js';
import type { StreamDatapath } from '../../src/datapath/stream-datapath.js';
import type { DialedConn } from '../../src/upstream/direct/socket-dial.js';

/** dialConn's outcome as a promise. */
function dialConn(dialer: DirectStreamDialer, host: string, opts: DialOptions, datapath: StreamDatapath): Promise<DialedConn> {
  return new Promise((resolve, reject) => dialer.dialConn({ host, port: 1 }, opts, datapath, (err, dialed) => (err ? reject(err) : resolve(dialed!))));
}

// The dial on a stream datapath (`dialConn`, what a route on the native datapath uses) bounds
// name resolution like `dial` does: on the injected clock, and aborted by the route's signal.
for (const c of streamDatapathCases()) {
  test(`dialConn: a resolution that never answers fails with SLUICE_ERR_DIAL_TIMEOUT exactly when the injected clock passes timeoutMs [${c.kind}]`, { skip: c.skip ?? false }, async () => {
    assert.ok(c.datapath, 'CI=true: the native stream datapath must load');
    const clock = new ManualClock();
    const dialer = new DirectStreamDialer(() => new Promise(() => {}), { clock });
    let outcome: unknown;
    const dial = dialConn(dialer, 'never.test', { signal: new AbortController().signal, timeoutMs: 5000 }, c.datapath).catch((e: unknown) => (outcome = e));
    assert.equal(clock.pendingTimers, 1, 'one timer armed on the injected clock');
    clock.advance(4999);
    await new Promise((r) => setImmediate(r));
    assert.equal(outcome, undefined, 'not before the timeout');
    clock.advance(1);
    await dial;
    assert.ok(isSluiceError(outcome, 'SLUICE_ERR_DIAL_TIMEOUT'), String(outcome));
    assert.match((outcome as Error).message, /never\.test:1 timed out after 5000ms/);
  });

  test(`dialConn: aborting during resolution fails with SLUICE_ERR_CLOSED and cancels the timer [${c.kind}]`, { skip: c.skip ?? false }, async () => {
    assert.ok(c.datapath, 'CI=true: the native stream datapath must load');
    const clock = new ManualClock();
    const dialer = new DirectStreamDialer(() => new Promise(() => {}), { clock });
    const ac = new AbortController();
    const dial = dialConn(dialer, 'never.test', { signal: ac.signal, timeoutMs: 5000 }, c.datapath);
    ac.abort();
    await assert.rejects(dial, (e) => isSluiceError(e, 'SLUICE_ERR_CLOSED'));
    assert.equal(clock.pendingTimers, 0);
  });
}
