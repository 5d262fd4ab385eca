import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newClientCounters, newServerCounters } from '../../src/udpexposer/counters.js';

/** Every number in `o`, nested objects included, by path. */
function numbers(o: object, at = ''): [string, number][] {
  return Object.entries(o).flatMap(([k, v]): [string, number][] => (typeof v === 'number' ? [[`${at}${k}`, v]] : numbers(v as object, `${at}${k}.`)));
}

test('each role starts from zero on every counter, with every drop reason present', () => {
  for (const fresh of [newServerCounters, newClientCounters]) {
    const c = fresh();
    assert.ok(numbers(c).every(([, v]) => v === 0), `${fresh.name}: all zero`);
  }
  assert.deepEqual(Object.keys(newServerCounters().dropped), ['peer-denied', 'no-client', 'short-from-client', 'unknown-tag', 'table-full', 'too-big', 'amplification', 'reply-budget']);
  assert.deepEqual(Object.keys(newClientCounters().dropped), ['foreign-source', 'short', 'too-big', 'queue-full', 'unregistered', 'bad-signature']);
});

test('two sets share nothing: bumping a nested counter of one leaves the other at zero', () => {
  const [a, b] = [newServerCounters(), newServerCounters()];
  a.dropped['too-big']++;
  a.toClient.bytes += 10;
  a.unverifiedReplies.replies++;
  a.echoesRefused.stale++;
  assert.ok(numbers(b).every(([, v]) => v === 0));
  const [c, d] = [newClientCounters(), newClientCounters()];
  c.dropped.short++;
  c.toServer.datagrams++;
  assert.ok(numbers(d).every(([, v]) => v === 0));
});
