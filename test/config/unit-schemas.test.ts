import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatIssue } from '../../src/config/types.js';
import { parseConfig } from '../../src/config/load.js';

// One duration and one size schema serve every section: the same values parse, and the same words
// come back for a wrong one, wherever the key is.

function issues(yaml: string): string[] {
  const r = parseConfig(yaml);
  assert.ok(!r.ok, 'refused');
  return r.issues.map(formatIssue);
}

test('a duration parses to milliseconds in every section; a wrong one is named with its key path, line and words', () => {
  const r = parseConfig('docker: { reconnect: { min: 250ms, max: 2m } }\nflowLog: { output: /tmp/x.jsonl, updateInterval: 5s }\n');
  assert.ok(r.ok, JSON.stringify(!r.ok && r.issues));
  assert.deepEqual(r.config.docker?.reconnect, { minMs: 250, maxMs: 120_000 });
  assert.equal(r.config.flowLog.updateIntervalMs, 5000);
  assert.deepEqual(issues('docker: { reconnect: { min: soon } }\n'), ['docker.reconnect.min (line 1): expected a duration such as 30s, 10m, 250ms; got "soon"']);
  assert.deepEqual(issues('flowLog: { output: /tmp/x.jsonl, updateInterval: soon }\n'), ['flowLog.updateInterval (line 1): expected a duration such as 30s, 10m, 250ms; got "soon"']);
  // Not a text at all: the same words in every section (the docker section had zod's own before).
  const docker = issues('docker: { reconnect: { min: 5 } }\n');
  const flowLog = issues('flowLog: { output: /tmp/x.jsonl, updateInterval: 5 }\n');
  assert.match(docker[0]!, /^docker\.reconnect\.min \(line 1\): .*a duration such as 30s, 10m or 250ms/);
  assert.equal(docker[0]!.replace(/^[^:]*:/, ''), flowLog[0]!.replace(/^[^:]*:/, ''));
});

test('a size parses to bytes; zero and nonsense are refused with the words', () => {
  const r = parseConfig('flowLog: { output: /tmp/x.jsonl, maxBytes: 1MiB }\n');
  assert.ok(r.ok, JSON.stringify(!r.ok && r.issues));
  assert.equal(r.config.flowLog.maxBytes, 1024 * 1024);
  assert.deepEqual(issues('flowLog: { output: /tmp/x.jsonl, maxBytes: 0 }\n'), ['flowLog.maxBytes (line 1): expected a size such as 100MiB, 512KiB or a whole number of bytes above 0; got "0"']);
});
