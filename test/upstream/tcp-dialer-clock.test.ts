import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isSluiceError } from '../../src/core/errors.js';
import { DirectStreamDialer } from '../../src/upstream/direct/tcp-dialer.js';
import { ManualClock } from '../helpers/manual-clock.js';

test('the direct TCP dial timeout runs on the injected clock: a resolution that never answers fails with SLUICE_ERR_DIAL_TIMEOUT exactly when the clock passes timeoutMs', async () => {
  const clock = new ManualClock();
  const dialer = new DirectStreamDialer(() => new Promise(() => {}), { clock });
  let outcome: unknown;
  const dial = dialer.dial({ host: 'never.test', port: 1 }, { signal: new AbortController().signal, timeoutMs: 5000 }).catch((e: unknown) => (outcome = e));
  assert.equal(clock.pendingTimers, 1, 'one timer armed on the injected clock');
  clock.advance(4999);
  await new Promise((r) => setImmediate(r));
  assert.equal(outcome, undefined, 'not before the timeout');
  clock.advance(1);
  await dial;
  assert.ok(isSluiceError(outcome, 'SLUICE_ERR_DIAL_TIMEOUT'), String(outcome));
  assert.match((outcome as Error).message, /never\.test:1 timed out after 5000ms/);
});

test('an aborted dial cancels its timer on the injected clock', async () => {
  const clock = new ManualClock();
  const dialer = new DirectStreamDialer(() => new Promise(() => {}), { clock });
  const ac = new AbortController();
  const dial = dialer.dial({ host: 'never.test', port: 1 }, { signal: ac.signal, timeoutMs: 5000 });
  ac.abort();
  await assert.rejects(dial, (e) => isSluiceError(e, 'SLUICE_ERR_CLOSED'));
  assert.equal(clock.pendingTimers, 0);
});
