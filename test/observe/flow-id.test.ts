import { test } from 'node:test';
import assert from 'node:assert/strict';
import { flowUuid, newInstanceId, uuidV5 } from '../../src/observe/flow-id.js';

test('uuidV5 matches the published vector (Python docs: uuid5(NAMESPACE_DNS, "python.org"))', () => {
  assert.equal(uuidV5('6ba7b810-9dad-11d1-80b4-00c04fd430c8', 'python.org'), '886313e1-3b8a-5372-9b90-0c9aee199e5d');
});

test('flowUuid is stable per flow, and differs by flow, source and instance', () => {
  const a = newInstanceId();
  const b = newInstanceId();
  assert.notEqual(a, b);
  const u = flowUuid(a, 'sluice', 7);
  assert.equal(flowUuid(a, 'sluice', 7), u);
  assert.match(u, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.notEqual(flowUuid(a, 'sluice', 8), u);
  assert.notEqual(flowUuid(a, 'conntrack', 7), u);
  assert.notEqual(flowUuid(b, 'sluice', 7), u);
  assert.equal(u, uuidV5(a, 'sluice/7'));
});

test('uuidV5 refuses a namespace that is not a UUID', () => {
  assert.throws(() => uuidV5('not-a-uuid', 'x'), TypeError);
});
