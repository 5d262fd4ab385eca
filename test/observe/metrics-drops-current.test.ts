import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { createMetrics } from '../../src/observe/metrics.js';
import { EventStream } from '../../src/observe/events.js';
import { FairSlot, reportPendingDrops, SendBudget } from '../../src/upstream/agent/send-budget.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { sample } from './prom-text.js';

test('a scrape of sluice_datagrams_dropped_total is current: the send budgets report their pending drops when it is read, not only at the end of their second', async () => {
  const clock = new ManualClock();
  const events = new EventStream((err) => {
    throw err;
  });
  const registry = new Registry();
  const m = createMetrics(registry, { reportDrops: reportPendingDrops });
  events.subscribe(m.sink);
  const budget = new SendBudget({ perSecond: 1000, roundMs: 10 }, clock, events); // 10 a round
  const slot = new FairSlot();
  let admitted = 0;
  for (let i = 0; i < 25; i++) if (budget.admit(slot, 'home/echo')) admitted++;
  const dropped = 25 - admitted;
  assert.ok(dropped >= 10, `dropped ${dropped}`);
  // No time has passed: the budget's report (once a second) is not due yet.
  const labels = { route: 'home/echo', reason: 'agent-budget' };
  assert.equal(await sample(registry, 'sluice_datagrams_dropped_total', labels), dropped);
  // Reported once: the timer's report adds nothing more.
  clock.advance(2000);
  assert.equal(await sample(registry, 'sluice_datagrams_dropped_total', labels), dropped);
  budget.close();
});
