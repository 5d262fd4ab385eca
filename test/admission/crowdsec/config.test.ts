import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../../src/config/load.js';
import { formatIssue } from '../../../src/config/types.js';

const problems = (yaml: string) => {
  const r = parseConfig(yaml);
  assert.equal(r.ok, false, 'expected the config to be refused');
  return r.ok ? [] : r.issues.map(formatIssue);
};

test('crowdsec: defaults, URL normalised, per-route and top-level opt-in', () => {
  const r = parseConfig(`
crowdsec:
  url: http://127.0.0.1:8080
  apiKey: 0123abcd
acl: { crowdsec: true }
routes:
  game: { listen: udp://127.0.0.1:0, upstream: 127.0.0.1:9 }
  web:
    listen: tcp://127.0.0.1:0
    upstream: 127.0.0.1:9
    acl: { deny: [192.0.2.0/24] }
`);
  assert.ok(r.ok, JSON.stringify(!r.ok && r.issues));
  assert.deepEqual(r.config.crowdsec, { url: 'http://127.0.0.1:8080/', apiKey: '0123abcd', mode: 'enforce', onUnavailable: 'allow', intervalMs: 10_000, timeoutMs: 5_000 });
  assert.equal(r.config.routes.find((x) => x.name === 'game')!.acl?.crowdsec, true, 'the top-level acl is the default');
  assert.equal(r.config.routes.find((x) => x.name === 'web')!.acl?.crowdsec, false, 'a route acl replaces it');
});

test('crowdsec: every key checked, with lines', () => {
  assert.deepEqual(
    problems(`
crowdsec:
  url: ftp://lapi
  apiKey: "has space"
  mode: block
  onUnavailable: maybe
  interval: 50ms
  timeout: soon
  retries: 3
`),
    [
      'crowdsec.url (line 3): expected an http:// or https:// URL, got ftp://',
      'crowdsec.apiKey (line 4): must be visible ASCII without spaces',
      'crowdsec.mode (line 5): expected one of enforce, observe; got "block"',
      'crowdsec.onUnavailable (line 6): expected one of allow, deny; got "maybe"',
      'crowdsec.interval (line 7): must be at least 100ms',
      'crowdsec.timeout (line 8): expected a duration such as 30s, 10m, 250ms; got "soon"',
      'crowdsec.retries (line 9): unknown key "retries"',
    ],
  );
  assert.deepEqual(problems('crowdsec: { url: "http://user:pw@lapi:8080" }\n'), [
    'crowdsec.url (line 1): credentials do not belong in the URL; the bouncer key goes in apiKey',
    'crowdsec.apiKey (line 1): is required',
  ]);
});

test('acl.crowdsec needs the crowdsec section', () => {
  assert.deepEqual(
    problems(`
routes:
  game:
    listen: udp://127.0.0.1:0
    upstream: 127.0.0.1:9
    acl:
      crowdsec: true
`),
    ['routes.game.acl.crowdsec (line 7): needs the top-level crowdsec: section (url, apiKey)'],
  );
});

test('gateway.services.acl.crowdsec needs the crowdsec section too', () => {
  const p = problems(`
gateway:
  listen: 127.0.0.1:0
  stateDir: /tmp/sluice-cs-config-test
  agents:
    home: { token: "0123456789abcdef0123456789abcdef" }
  ports: 1024-65535
  services:
    acl: { crowdsec: true }
`);
  assert.deepEqual(p, ['gateway.services.acl.crowdsec (line 9): needs the top-level crowdsec: section (url, apiKey)']);
});
