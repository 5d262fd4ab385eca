import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/load.js';
import { formatIssue } from '../../src/config/types.js';

function problems(yaml: string): string[] {
  const r = parseConfig(yaml);
  assert.equal(r.ok, false, 'expected the config to be refused');
  return r.ok ? [] : r.issues.map(formatIssue);
}

function sliceOf(yaml: string): number | undefined {
  const r = parseConfig(yaml);
  if (!r.ok) assert.fail(r.issues.map(formatIssue).join('\n'));
  return r.config.scheduler?.sliceUs;
}

test('scheduler config: the default, 0, and the kernel bounds 100..100000 µs', () => {
  // Absent: the default (DEFAULT_SLICE_US), applied without a warning where it cannot be had.
  assert.equal(sliceOf('routes: {}\n'), undefined);
  assert.equal(sliceOf('scheduler: {}\n'), undefined);
  assert.equal(sliceOf('scheduler: { sliceUs: 0 }\n'), 0);
  assert.equal(sliceOf('scheduler: { sliceUs: 100 }\n'), 100);
  assert.equal(sliceOf('scheduler:\n  sliceUs: 100000\n'), 100_000);
});

test('scheduler config: a bad slice is named with its path and line', () => {
  const expected = "expected 0 (the system's slice) or 100..100000 microseconds";
  assert.deepEqual(problems('routes: {}\nscheduler:\n  sliceUs: 50\n'), [`scheduler.sliceUs (line 3): ${expected}; got 50`]);
  assert.deepEqual(problems('scheduler:\n  sliceUs: 100001\n'), [`scheduler.sliceUs (line 2): ${expected}; got 100001`]);
  assert.deepEqual(problems('scheduler:\n  sliceUs: -1\n'), [`scheduler.sliceUs (line 2): ${expected}; got -1`]);
  assert.deepEqual(problems('scheduler:\n  sliceUs: 150.5\n'), [`scheduler.sliceUs (line 2): ${expected}; got 150.5`]);
  assert.match(problems('scheduler:\n  sliceUs: 100us\n')[0]!, /^scheduler\.sliceUs \(line 2\): expected 0 \(the system's slice\) or 100\.\.100000 microseconds; got "100us"/);
  assert.deepEqual(problems('scheduler:\n  sliceUS: 100\n'), ['scheduler.sliceUS (line 2): unknown key "sliceUS" (did you mean "sliceUs"?)']);
});
