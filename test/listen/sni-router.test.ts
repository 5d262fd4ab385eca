import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nameScore, pickRoute } from '../../src/listen/sni-router.js';
import type { RouteMatch } from '../../src/config/route-match.js';

const route = (id: string, match?: RouteMatch) => ({ id, config: match ? { match } : {} });
const hello = (serverName: string | undefined, alpn: string[] = []) => ({ serverName, alpn, ech: false });

test('names: exact beats wildcard, a longer wildcard beats a shorter one, a wildcard never matches its own base', () => {
  assert.ok(nameScore('a.example.org', 'a.example.org') > nameScore('*.example.org', 'a.example.org'));
  assert.ok(nameScore('*.b.example.org', 'x.b.example.org') > nameScore('*.example.org', 'x.b.example.org'));
  assert.equal(nameScore('*.example.org', 'example.org'), -1);
  assert.equal(nameScore('*.example.org', 'xexample.org'), -1);
  assert.ok(nameScore('*.example.org', 'a.b.c.example.org') > 0, 'any depth');
  const routes = [route('wide', { sni: ['*.example.org'] }), route('exact', { sni: ['a.example.org'] }), route('deeper', { sni: ['*.b.example.org'] }), route('default')];
  assert.equal(pickRoute(routes, hello('a.example.org'))?.id, 'exact');
  assert.equal(pickRoute(routes, hello('z.b.example.org'))?.id, 'deeper');
  assert.equal(pickRoute(routes, hello('q.example.org'))?.id, 'wide');
  assert.equal(pickRoute(routes, hello('other.org'))?.id, 'default');
  assert.equal(pickRoute(routes, hello(undefined))?.id, 'default', 'no SNI goes to the default');
  assert.equal(pickRoute(routes.slice(0, 3), hello('other.org')), undefined);
});

test('ALPN: a route with alpn takes only clients offering one of them and wins a tie of names', () => {
  const routes = [route('web', { sni: ['a.example.org'] }), route('acme', { sni: ['a.example.org'], alpn: ['acme-tls/1'] })];
  assert.equal(pickRoute(routes, hello('a.example.org', ['acme-tls/1']))?.id, 'acme');
  assert.equal(pickRoute(routes, hello('a.example.org', ['h2', 'http/1.1']))?.id, 'web');
  assert.equal(pickRoute([routes[1]!], hello('a.example.org', ['h2'])), undefined);
  // The name decides first: an exact name without alpn beats a wildcard with matching alpn.
  const mixed = [route('exact', { sni: ['a.example.org'] }), route('wild', { sni: ['*.example.org'], alpn: ['h2'] })];
  assert.equal(pickRoute(mixed, hello('a.example.org', ['h2']))?.id, 'exact');
});
