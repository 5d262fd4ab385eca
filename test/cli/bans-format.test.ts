import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatBans } from '../../src/cli/bans.js';

test('sluice bans list table: a SOURCE column for every source, `when deleted` for a decision without an end, and the page line when the list holds more', () => {
  const bans = [
    { target: '203.0.113.7', source: 'api', reason: 'by hand', expiresAt: '2026-12-06T15:00:00.000Z' },
    { target: '198.51.100.0/24', source: 'crowdsec', reason: 'crowdsecurity/ssh-bf (origin crowdsec)', expiresAt: null },
  ];
  assert.equal(
    formatBans({ bans, total: 2, offset: 0 }),
    [
      'TARGET           SOURCE    EXPIRES                   REASON',
      '203.0.113.7      api       2026-12-06T15:00:00.000Z  by hand',
      '198.51.100.0/24  crowdsec  when deleted              crowdsecurity/ssh-bf (origin crowdsec)',
      '',
    ].join('\n'),
  );
  assert.match(formatBans({ bans, total: 1000, offset: 0 }), /\nbans 1-2 of 1000; next: --offset 2\n$/);
  assert.match(formatBans({ bans, total: 12, offset: 10 }), /\nbans 11-12 of 12\n$/, 'the last page names no next one');
  assert.equal(formatBans({ bans: [], total: 12, offset: 50 }), 'no bans from 51 (the list holds 12)\n');
  assert.equal(formatBans({ bans: [], total: 0, offset: 0 }), 'no bans\n');
});
