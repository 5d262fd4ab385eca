import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rejudge, VerdictChanges, type JudgedFlow, type Reverdictable } from '../../src/admission/reverdict.js';
import type { Admitter } from '../../src/admission/admitter.js';
import { EventStream, type SluiceEvent } from '../../src/observe/events.js';
import { ManualClock } from '../helpers/manual-clock.js';

const flow = (address: string): JudgedFlow => ({ client: { address, port: 1000, family: 4 }, wouldEndNoted: false });

test('rejudge: refused flows end, observe-only ones are recorded once, admitted ones are left alone', () => {
  const flows = new Set([flow('192.0.2.1'), flow('192.0.2.2'), flow('192.0.2.3')]);
  const admit: Admitter = (c) =>
    c.address === '192.0.2.1' ? { reason: 'crowdsec', detail: 'ban' } : c.address === '192.0.2.2' ? { reason: 'acl-cidr', detail: 'deny', observeOnly: true } : undefined;
  const ended: string[] = [];
  const would: string[] = [];
  // `end` removes from the live set while rejudge iterates: it works on a copy.
  const end = (f: JudgedFlow) => {
    ended.push(f.client.address);
    flows.delete(f);
  };
  assert.deepEqual(rejudge(flows, admit, 'r', end, (f) => would.push(f.client.address)), { checked: 3, ended: 1, wouldEnd: 1 });
  assert.deepEqual(rejudge(flows, admit, 'r', end, (f) => would.push(f.client.address)), { checked: 2, ended: 0, wouldEnd: 0 }, 'would-end once per flow');
  assert.deepEqual([ended, would], [['192.0.2.1'], ['192.0.2.2']]);
  assert.deepEqual(rejudge(flows, undefined, 'r', end, end), { checked: 0, ended: 0, wouldEnd: 0 }, 'no admitter: nothing to judge');
});

test('VerdictChanges: one change judges every watched holder and reports the totals once; unwatch stops it', () => {
  const events = new EventStream((err) => {
    throw err;
  });
  const seen: SluiceEvent[] = [];
  events.subscribe((e) => seen.push(e));
  const clock = new ManualClock();
  const v = new VerdictChanges(events, clock);
  let calls = 0;
  const holder = (n: { checked: number; ended: number; wouldEnd: number }): Reverdictable => ({ reverdict: () => (calls++, n) });
  const unwatch = v.watch(() => [holder({ checked: 3, ended: 1, wouldEnd: 0 }), holder({ checked: 2, ended: 0, wouldEnd: 2 })]);
  v.watch(() => [holder({ checked: 1, ended: 1, wouldEnd: 0 })]);
  assert.deepEqual(v.changed('crowdsec'), { checked: 6, ended: 2, wouldEnd: 2 });
  assert.deepEqual(seen, [{ type: 'verdicts-reapplied', at: clock.wallNow(), cause: 'crowdsec', checked: 6, ended: 2, wouldEnd: 2 }]);
  unwatch();
  assert.deepEqual(v.changed('reload'), { checked: 1, ended: 1, wouldEnd: 0 });
  assert.equal(calls, 4);
});

test('VerdictChanges.forNewFlows: the step judges new clients but admits every live one during a pass', () => {
  const v = new VerdictChanges(new EventStream(() => {}), new ManualClock());
  const refuseAll: Admitter = () => ({ reason: 'fleet-source-sessions', detail: 'full' });
  const step = v.forNewFlows(refuseAll);
  assert.equal(step({ address: '192.0.2.9', port: 1, family: 4 }, 'r')?.reason, 'fleet-source-sessions', 'a new client is judged');
  const live = new Set([flow('192.0.2.9')]);
  const ended: string[] = [];
  v.watch(() => [{ reverdict: () => rejudge(live, step, 'r', (f) => ended.push(f.client.address), () => {}) }]);
  assert.deepEqual(v.changed('bans'), { checked: 1, ended: 0, wouldEnd: 0 });
  assert.deepEqual(ended, []);
  assert.equal(step({ address: '192.0.2.9', port: 1, family: 4 }, 'r')?.reason, 'fleet-source-sessions', 'judged again after the pass');
});
