import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CrowdsecBouncer, type BouncerStatus } from '../../../src/admission/crowdsec/crowdsec-bouncer.js';
import { USER_AGENT } from '../../../src/admission/crowdsec/settings.js';
import { normaliseLapiUrl, type CrowdsecSettings } from '../../../src/config/crowdsec-settings.js';
import { systemClock } from '../../../src/core/clock.js';
import { ManualClock } from '../../helpers/manual-clock.js';
import { freePort, waitFor } from '../../helpers/net.js';
import { decision, fakeLapi } from './fake-lapi.js';

function settings(url: string, o: Partial<CrowdsecSettings> = {}): CrowdsecSettings {
  return { url: normaliseLapiUrl(url), apiKey: 'good-key', mode: 'enforce', onUnavailable: 'allow', intervalMs: 10_000, timeoutMs: 2_000, ...o };
}

/** A bouncer on a manual clock: pulls happen only through refresh(), so each step is explicit. */
function manualBouncer(t: import('node:test').TestContext, s: CrowdsecSettings) {
  const clock = new ManualClock();
  const statuses: BouncerStatus[] = [];
  const b = new CrowdsecBouncer(s, { clock, onStatus: (x) => statuses.push(x) });
  t.after(() => b.close());
  return { b, clock, statuses };
}

test('startup pull, then deltas: the LAPI sees startup=true once, the key, the User-Agent and the scopes', async (t) => {
  const lapi = await fakeLapi(t);
  const a = decision('Ip', '192.0.2.1', { scenario: 'crowdsecurity/ssh-bf' });
  const r = decision('Range', '198.51.100.0/24');
  let step = 0;
  lapi.answer(() => [{ body: { new: [a, r], deleted: null } }, { body: { new: [decision('Ip', '2001:db8::7')], deleted: [a] } }, { body: { new: null, deleted: [r] } }][step++] ?? {});
  const { b } = manualBouncer(t, settings(lapi.url));
  await b.firstPull;
  assert.equal(b.state, 'ready');
  assert.deepEqual(b.check('192.0.2.1'), { reason: 'crowdsec', detail: 'crowdsecurity/ssh-bf (ban on Ip 192.0.2.1, origin cscli)', observeOnly: false });
  assert.equal(b.check('198.51.100.9')?.reason, 'crowdsec');
  assert.equal(b.check('192.0.2.2'), undefined);
  await b.refresh();
  assert.equal(b.check('192.0.2.1'), undefined, 'deleted by the delta');
  assert.equal(b.check('2001:db8::7')?.reason, 'crowdsec');
  assert.equal(b.check('198.51.100.9')?.reason, 'crowdsec');
  await b.refresh();
  assert.equal(b.check('198.51.100.9'), undefined);
  assert.deepEqual(
    lapi.seen.map((s) => [s.path, s.startup, s.scopes]),
    [
      ['/v1/decisions/stream', 'true', 'ip,range'],
      ['/v1/decisions/stream', 'false', 'ip,range'],
      ['/v1/decisions/stream', 'false', 'ip,range'],
    ],
  );
  for (const s of lapi.seen) {
    assert.equal(s.apiKey, 'good-key');
    assert.equal(s.userAgent, USER_AGENT);
  }
  assert.deepEqual(b.counters.pullsOk, { full: 1, delta: 2 });
});

test('a base URL with a path prefix is kept (LAPI behind a reverse proxy)', async (t) => {
  const lapi = await fakeLapi(t);
  const { b } = manualBouncer(t, settings(`${lapi.url}crowdsec`));
  await b.firstPull;
  assert.equal(lapi.seen[0]!.path, '/crowdsec/v1/decisions/stream');
});

test('expiry is honoured between pulls (manual clock)', async (t) => {
  const lapi = await fakeLapi(t);
  lapi.answer(() => ({ body: { new: [decision('Ip', '192.0.2.1', { duration: '2s' }), decision('Range', '10.0.0.0/8', { duration: '1m0s' })] } }));
  const { b, clock } = manualBouncer(t, settings(lapi.url));
  await b.firstPull;
  assert.ok(b.check('192.0.2.1'));
  clock.advance(1_999);
  assert.ok(b.check('192.0.2.1'));
  clock.advance(1);
  assert.equal(b.check('192.0.2.1'), undefined);
  assert.ok(b.check('10.1.1.1'));
  clock.advance(58_000);
  assert.equal(b.check('10.1.1.1'), undefined);
});

test('an IPv4 ban catches the IPv4-mapped spelling a dual-stack listener reports', async (t) => {
  const lapi = await fakeLapi(t);
  lapi.answer(() => ({ body: { new: [decision('Ip', '127.0.0.2')] } }));
  const { b } = manualBouncer(t, settings(lapi.url));
  await b.firstPull;
  assert.equal(b.check('::ffff:127.0.0.2')?.reason, 'crowdsec');
  assert.equal(b.check('::FFFF:7f00:2')?.reason, 'crowdsec');
  assert.equal(b.check('::ffff:127.0.0.1'), undefined);
});

test('wrong key: 403 is an auth failure, reported once, counted; onUnavailable decides', async (t) => {
  const lapi = await fakeLapi(t);
  for (const onUnavailable of ['allow', 'deny'] as const) {
    const { b, statuses } = manualBouncer(t, { ...settings(lapi.url, { onUnavailable }), apiKey: 'wrong-key' });
    await b.firstPull;
    await b.refresh();
    assert.equal(b.state, 'unavailable');
    assert.equal(b.counters.pullsFailed.auth, 2);
    assert.equal(statuses.length, 1, 'one report for the change, not one per pull');
    assert.equal(statuses[0]!.error?.kind, 'auth');
    assert.match(statuses[0]!.error!.message, /refused the bouncer key \(HTTP 403: access forbidden\).*crowdsec\.apiKey/);
    const v = b.check('192.0.2.1');
    if (onUnavailable === 'allow') assert.equal(v, undefined);
    else assert.deepEqual(v, { reason: 'crowdsec', detail: 'no decision list loaded: auth; onUnavailable is deny', observeOnly: false });
  }
});

test('LAPI down: unreachable; other statuses: http; both counted by kind', async (t) => {
  const port = await freePort();
  const { b, statuses } = manualBouncer(t, settings(`http://127.0.0.1:${port}`, { onUnavailable: 'deny' }));
  await b.firstPull;
  assert.equal(b.state, 'unavailable');
  assert.equal(b.counters.pullsFailed.unreachable, 1);
  assert.match(statuses[0]!.error!.message, /cannot reach http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED/);
  assert.equal(b.check('192.0.2.1')?.detail, 'no decision list loaded: unreachable; onUnavailable is deny');

  const lapi = await fakeLapi(t);
  lapi.answer(() => ({ status: 500, body: { message: 'database is locked' } }));
  const other = manualBouncer(t, settings(lapi.url));
  await other.b.firstPull;
  assert.equal(other.b.counters.pullsFailed.http, 1);
  assert.match(other.statuses[0]!.error!.message, /HTTP 500: database is locked/);
});

test('slow LAPI: the pull times out, and check() answers at once meanwhile', async (t) => {
  const lapi = await fakeLapi(t);
  lapi.answer(() => ({ delayMs: 2_000, body: { new: [decision('Ip', '192.0.2.1')] } }));
  const { b, clock, statuses } = manualBouncer(t, settings(lapi.url, { timeoutMs: 150, onUnavailable: 'deny' }));
  const t0 = performance.now();
  assert.equal(b.state, 'starting');
  assert.equal(b.check('192.0.2.9')?.detail, 'no decision list loaded yet; onUnavailable is deny');
  assert.ok(performance.now() - t0 < 50, 'check never waits on the pull');
  await waitFor(() => lapi.seen.length === 1, 'the pull reached the LAPI');
  clock.advance(149);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(b.state, 'starting', 'the pull timeout runs on the bouncer clock: not yet');
  clock.advance(1);
  await b.firstPull;
  assert.ok(performance.now() - t0 < 1_500, 'the timeout cut the pull');
  assert.equal(b.counters.pullsFailed.timeout, 1);
  assert.match(statuses[0]!.error!.message, /no answer from http:\/\/127\.0\.0\.1:\d+ within 150ms/);
  // A LAPI that accepts and then hangs up mid-answer.
  lapi.answer(() => ({ hangUp: true }));
  await b.refresh();
  assert.equal(b.counters.pullsFailed.unreachable, 1);
});

test('the pull timeout runs on the injected clock, not on real time', async (t) => {
  const lapi = await fakeLapi(t);
  lapi.answer(() => ({ delayMs: 5_000, body: {} }));
  const { b, clock } = manualBouncer(t, settings(lapi.url, { timeoutMs: 60_000 }));
  await waitFor(() => lapi.seen.length === 1, 'the pull reached the LAPI');
  const t0 = performance.now();
  clock.advance(60_000);
  await b.firstPull;
  assert.ok(performance.now() - t0 < 2_000, 'a minute on the clock, not five real seconds');
  assert.equal(b.counters.pullsFailed.timeout, 1);
  assert.equal(clock.pendingTimers, 1, 'only the next pull is scheduled: the timeout timer is gone');
});

test('malformed answers: counted; after 3 failed pulls the list is stale; the next good pull is a full resync', async (t) => {
  const lapi = await fakeLapi(t);
  const a = decision('Ip', '192.0.2.1');
  lapi.answer(() => ({ body: { new: [a] } }));
  const { b, statuses } = manualBouncer(t, settings(lapi.url, { onUnavailable: 'deny' }));
  await b.firstPull;
  lapi.answer(() => ({ raw: '{"new": [' }));
  await b.refresh();
  assert.equal(b.state, 'degraded');
  assert.equal(b.check('192.0.2.1')?.reason, 'crowdsec', 'the last list is still used');
  assert.equal(b.check('192.0.2.2'), undefined);
  lapi.answer(() => ({ raw: '[]' }));
  await b.refresh();
  assert.equal(b.state, 'degraded');
  await b.refresh();
  assert.equal(b.state, 'stale');
  assert.equal(b.counters.pullsFailed.malformed, 3);
  assert.equal(b.check('192.0.2.2')?.detail, 'decision list stale: 3 pulls in a row failed (last: malformed); onUnavailable is deny');
  assert.deepEqual(
    statuses.map((s) => [s.previous, s.state, s.error?.kind]),
    [
      ['starting', 'ready', undefined],
      ['ready', 'degraded', 'malformed'],
      ['degraded', 'stale', 'malformed'],
    ],
  );
  // Back: the LAPI now has a different list; the full pull replaces the old one.
  lapi.answer((r) => ({ body: r.startup === 'true' ? { new: [decision('Ip', '192.0.2.5')] } : { new: null } }));
  await b.refresh();
  assert.equal(b.state, 'ready');
  assert.equal(b.check('192.0.2.1'), undefined, 'dropped by the full resync');
  assert.equal(b.check('192.0.2.5')?.reason, 'crowdsec');
  assert.deepEqual(lapi.seen.map((s) => s.startup), ['true', 'false', 'true', 'true', 'true'], 'a delta after success, the full list after each failure');
});

test('stale with onUnavailable: allow keeps enforcing the bans it knows and admits the rest', async (t) => {
  const lapi = await fakeLapi(t);
  lapi.answer(() => ({ body: { new: [decision('Ip', '192.0.2.1')] } }));
  const { b } = manualBouncer(t, settings(lapi.url));
  await b.firstPull;
  lapi.answer(() => ({ status: 503 }));
  for (let i = 0; i < 3; i++) await b.refresh();
  assert.equal(b.state, 'stale');
  assert.equal(b.check('192.0.2.1')?.reason, 'crowdsec');
  assert.equal(b.check('192.0.2.2'), undefined);
});

test('observe mode: the verdict is observe-only; setPolicy switches mode and onUnavailable in place', async (t) => {
  const lapi = await fakeLapi(t);
  lapi.answer(() => ({ body: { new: [decision('Ip', '192.0.2.1')] } }));
  const { b } = manualBouncer(t, settings(lapi.url, { mode: 'observe' }));
  await b.firstPull;
  assert.equal(b.check('192.0.2.1')?.observeOnly, true);
  b.setPolicy('enforce', 'deny');
  assert.equal(b.check('192.0.2.1')?.observeOnly, false);
  assert.equal(b.stats().decisions, 1, 'the list is kept');
});

test('pulls repeat every interval on a real clock, never overlap, and stop at close()', async (t) => {
  const lapi = await fakeLapi(t);
  let inFlight = 0;
  let maxInFlight = 0;
  lapi.answer(() => {
    maxInFlight = Math.max(maxInFlight, ++inFlight);
    setTimeout(() => inFlight--, 60).unref();
    return { delayMs: 60, body: { new: null } };
  });
  const b = new CrowdsecBouncer(settings(lapi.url, { intervalMs: 40, timeoutMs: 1_000 }), { clock: systemClock });
  t.after(() => b.close());
  await waitFor(() => lapi.seen.length >= 4, 'four pulls');
  b.close();
  const n = lapi.seen.length;
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(lapi.seen.length, n, 'no pull after close');
  assert.equal(maxInFlight, 1);
  assert.equal(b.state, 'closed');
});

test('close() cancels a pull in flight without reporting a failure', async (t) => {
  const lapi = await fakeLapi(t);
  lapi.answer(() => ({ delayMs: 5_000, body: {} }));
  const { b, statuses } = manualBouncer(t, settings(lapi.url, { timeoutMs: 10_000 }));
  await waitFor(() => lapi.seen.length === 1, 'the pull started');
  b.close();
  await b.firstPull;
  assert.deepEqual(statuses.map((s) => s.state), ['closed']);
  assert.deepEqual(b.counters.pullsFailed, { auth: 0, http: 0, unreachable: 0, timeout: 0, malformed: 0 });
});

test('onVerdictsChanged: called for a pull that brings bans or a state change under onUnavailable: deny, not for an empty delta', async (t) => {
  const lapi = await fakeLapi(t);
  const run = async (onUnavailable: 'allow' | 'deny') => {
    const clock = new ManualClock();
    let calls = 0;
    lapi.answer(() => ({ body: { new: null } }));
    const b = new CrowdsecBouncer(settings(lapi.url, { onUnavailable }), { clock, onVerdictsChanged: () => calls++ });
    t.after(() => b.close());
    await b.firstPull;
    const seen: number[] = [calls];
    await b.refresh(); // empty delta, same state
    seen.push(calls);
    lapi.answer(() => ({ body: { new: [decision('Ip', '192.0.2.9')] } }));
    await b.refresh(); // a ban
    seen.push(calls);
    lapi.answer(() => ({ status: 503 }));
    await b.refresh(); // ready -> degraded
    seen.push(calls);
    b.close();
    seen.push(calls);
    return seen;
  };
  // The first pull's starting -> ready counts under deny only (the state decides then); a ban always counts.
  assert.deepEqual(await run('allow'), [0, 0, 1, 1, 1]);
  assert.deepEqual(await run('deny'), [1, 1, 2, 3, 3]);
});
