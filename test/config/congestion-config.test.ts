import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/load.js';
import { formatIssue } from '../../src/config/types.js';

function congestionOf(yaml: string): string | undefined {
  const r = parseConfig(yaml);
  if (!r.ok) assert.fail(r.issues.map(formatIssue).join('\n'));
  return r.config.congestion;
}

test('congestion config: auto by default, system, or a name (checked against the kernel at start)', () => {
  assert.equal(congestionOf('routes: {}\n'), 'auto');
  assert.equal(congestionOf('congestion: system\n'), 'system');
  assert.equal(congestionOf('congestion: cubic\n'), 'cubic');
  assert.equal(congestionOf('congestion: bbr\n'), 'bbr');
});

test('congestion config: what cannot be an algorithm name is named with its line', () => {
  const r = parseConfig('routes: {}\ncongestion: Cubic!\n');
  assert.equal(r.ok, false);
  const shown = r.ok ? [] : r.issues.map(formatIssue);
  assert.equal(shown.length, 1);
  assert.match(shown[0]!, /^congestion \(line 2\): auto, system, or the name of a TCP congestion control \(cubic, bbr, reno, \.\.\.\)/);
});
