import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseGoDurationMs, parseStreamBody, targetText, type StreamBody } from '../../../src/admission/crowdsec/stream-body.js';

const ok = (text: string): StreamBody => {
  const r = parseStreamBody(text);
  if (typeof r === 'string') assert.fail(r);
  return r;
};
const decision = (o: Record<string, unknown>) => ({ id: 1, origin: 'cscli', type: 'ban', scope: 'Ip', value: '192.0.2.1', duration: '1h', scenario: 'manual', ...o });

test('go durations as the LAPI writes them', () => {
  assert.equal(parseGoDurationMs('9m59.533874285s'), 599_533.874285);
  assert.equal(parseGoDurationMs('3h59m58s'), (3 * 3600 + 59 * 60 + 58) * 1000);
  assert.equal(parseGoDurationMs('-2m0.5s'), -120_500);
  assert.equal(parseGoDurationMs('0s'), 0);
  assert.equal(parseGoDurationMs('0'), 0);
  assert.equal(parseGoDurationMs('1.5ms'), 1.5);
  assert.equal(parseGoDurationMs('250µs'), 0.25);
  for (const bad of ['', '-', '1', '1d', 'h', '1h ', ' 1h', '1x2s', 'abc']) assert.equal(parseGoDurationMs(bad), undefined, bad);
});

test('a stream answer: bans kept with identity and remaining time; null lists are empty', () => {
  assert.deepEqual(ok('{"new":null,"deleted":null}'), { added: [], deleted: [], ignored: {} });
  assert.deepEqual(ok('{}'), { added: [], deleted: [], ignored: {} });
  const b = ok(JSON.stringify({ new: [decision({ id: 7, duration: '59.5s', scenario: 'crowdsecurity/ssh-bf', origin: 'crowdsec' })], deleted: [decision({ id: 3 })] }));
  assert.equal(b.added.length, 1);
  const ban = b.added[0]!;
  assert.equal(ban.key, '#7');
  assert.equal(ban.remainingMs, 59_500);
  assert.equal(ban.scenario, 'crowdsecurity/ssh-bf');
  assert.equal(ban.origin, 'crowdsec');
  assert.equal(targetText(ban.target), '192.0.2.1');
  assert.deepEqual(b.deleted, ['#3']);
});

test('scopes and types an L4 relay cannot act on are skipped and counted, not fatal', () => {
  const b = ok(
    JSON.stringify({
      new: [
        decision({ scope: 'Country', value: 'FR' }),
        decision({ scope: 'AS', value: '1234' }),
        decision({ type: 'captcha' }),
        decision({ simulated: true }),
        decision({ duration: '-3s' }),
        decision({ value: 'not-an-ip' }),
        decision({ scope: 'Range', value: '10.0.0.0/33' }),
        'a string',
        null,
        decision({ duration: 5 }),
        decision({ id: 9, scope: 'ip', value: '2001:DB8::1' }), // lower-case scope, upper-case hex
      ],
      deleted: [{ scope: 'Country', value: 'FR' }, 42],
    }),
  );
  assert.deepEqual(b.ignored, { scope: 2, type: 1, simulated: 1, expired: 1, invalid: 6 });
  assert.equal(b.added.length, 1);
  assert.equal(targetText(b.added[0]!.target), '2001:db8::1');
  assert.deepEqual(b.deleted, []);
});

test('ranges: host bits cleared, IPv4-mapped networks become IPv4, identity without id falls back to the content', () => {
  const b = ok(
    JSON.stringify({
      new: [
        decision({ id: undefined, scope: 'Range', value: '198.51.100.77/24' }),
        decision({ id: 2, scope: 'Range', value: '::ffff:203.0.113.0/120' }),
        decision({ id: 3, scope: 'Range', value: '2001:db8:0:0:1::/64' }),
        decision({ id: 4, scope: 'Ip', value: '::ffff:192.0.2.9' }),
      ],
    }),
  );
  assert.deepEqual(
    b.added.map((x) => [x.key, targetText(x.target)]),
    [
      ['range|198.51.100.0/24|cscli|manual', '198.51.100.0/24'],
      ['#2', '203.0.113.0/24'],
      ['#3', '2001:db8::/64'],
      ['#4', '192.0.2.9'],
    ],
  );
});

test('a decision without duration never expires on its own (deleting it still works)', () => {
  const b = ok(JSON.stringify({ new: [decision({ duration: undefined })] }));
  assert.equal(b.added[0]!.remainingMs, Infinity);
});

test('a body that is not a decision stream is refused with a reason', () => {
  for (const [text, want] of [
    ['<html>502 Bad Gateway</html>', /not JSON/],
    ['[]', /an array/],
    ['null', /null/],
    ['"x"', /a string/],
    ['{"new": {"a": 1}}', /"new" must be an array/],
    ['{"new": [], "deleted": 3}', /"deleted" must be an array/],
    ['{"new": [', /not JSON/],
  ] as const) {
    const r = parseStreamBody(text);
    assert.equal(typeof r, 'string', text);
    assert.match(r as string, want);
  }
});
