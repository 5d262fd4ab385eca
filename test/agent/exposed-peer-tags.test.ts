import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TunnelEnd } from '../../src/datapath/offload.js';
import type { DatagramOrigin } from '../../src/protocol/tunnel/index.js';
import { ExposedPeerTags } from '../../src/agent/exposed-peer-tags.js';
import type { PeerLink } from '../../src/agent/peer-link.js';

const origin = (serviceId: number): DatagramOrigin => ({ serviceId, client: { address: '198.51.100.4', port: 4000, family: 4 } }) as DatagramOrigin;
const linkA = { peer: 'a' } as PeerLink;
const linkA2 = { peer: 'a' } as PeerLink;
const linkB = { peer: 'b' } as PeerLink;
/** The relay's end as the gateway path gives it: valid until the test says otherwise. */
const relayEnd = () => ({ kind: 'tunnel', tag: 5, valid: () => true }) as unknown as TunnelEnd;

/** An offload entry in the batch: joins the end's groups, counts its closes. */
function install(end: TunnelEnd | null) {
  const entry = { closed: 0, close() { entry.closed++; } };
  for (const g of end?.groups ?? []) g.add(entry);
  return entry;
}

test('a direct datagram is taken only for a tag named as the sending peer\'s flow, with the gateway\'s origin', () => {
  const t = new ExposedPeerTags();
  assert.equal(t.arrivedDirect(linkA, 5), undefined, 'not named');
  t.named(5, 'a', origin(1));
  assert.equal(t.arrivedDirect(linkB, 5), undefined, "another peer's link");
  assert.equal(t.directLink(5), undefined);
  assert.deepEqual(t.arrivedDirect(linkA, 5), origin(1));
  assert.equal(t.directLink(5), linkA);
  assert.equal(t.directLink(6), undefined);
});

test('offload ends: a peer flow\'s relayed end is closed and invalid once a direct datagram comes; other tags get the relay as is', () => {
  const t = new ExposedPeerTags();
  const plain = relayEnd();
  assert.equal(t.offloadEnd(9, {} as never, () => plain), plain);
  t.named(5, 'a', origin(1));
  const end = t.offloadEnd(5, {} as never, relayEnd)!;
  const entry = install(end);
  assert.equal(end.valid(), true);
  t.arrivedDirect(linkA, 5);
  assert.equal(entry.closed, 1);
  assert.equal(end.valid(), false);
  t.arrivedDirect(linkA, 5);
  assert.equal(entry.closed, 1, 'same link again: no change');
});

test('replies go back through the gateway after a relayed datagram, an idle link, forget or clear', () => {
  const t = new ExposedPeerTags();
  t.named(5, 'a', origin(1));
  t.named(6, 'a', origin(2));
  t.named(7, 'b', origin(3));
  t.arrivedDirect(linkA, 5);
  t.arrivedDirect(linkA2, 6);
  t.arrivedDirect(linkB, 7);
  t.arrivedRelayed(5);
  assert.equal(t.directLink(5), undefined);
  t.linkIdle(linkA2);
  assert.equal(t.directLink(6), undefined);
  assert.equal(t.directLink(7), linkB);
  t.forget(7);
  assert.equal(t.directLink(7), undefined);
  assert.equal(t.arrivedDirect(linkB, 7), undefined, 'forgotten: no longer a peer flow');
  t.clear();
  assert.equal(t.arrivedDirect(linkA, 5), undefined);
});
