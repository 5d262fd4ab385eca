import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PEER_TAG_BIT } from '../../src/protocol/tunnel/index.js';
import type { PeerFlow } from '../../src/agent/peer-flow.js';
import type { PeerLink } from '../../src/agent/peer-link.js';
import { PeerFlowTable } from '../../src/agent/peer-flow-table.js';

/** The table keys flows by `tag`, `peerTag` and `link` only: plain objects stand in for them. */
const flow = (link: PeerLink): PeerFlow => ({ tag: 0, peerTag: 0, link }) as PeerFlow;
const linkA = { peer: 'a' } as PeerLink;
const linkB = { peer: 'b' } as PeerLink;

test('relay tags: top bit set, counting from 1; rekey returns the old tag and frees it', () => {
  const t = new PeerFlowTable();
  const f = flow(linkA);
  const g = flow(linkA);
  assert.equal(t.rekey(f), 0);
  assert.equal(f.tag, (PEER_TAG_BIT | 1) >>> 0);
  assert.equal(t.rekey(g), 0);
  assert.equal(g.tag, (PEER_TAG_BIT | 2) >>> 0);
  assert.equal(t.rekey(f), (PEER_TAG_BIT | 1) >>> 0);
  assert.equal(f.tag, (PEER_TAG_BIT | 3) >>> 0);
  assert.equal(t.get((PEER_TAG_BIT | 1) >>> 0), undefined);
  assert.equal(t.get(f.tag), f);
  assert.deepEqual([...t.values()], [g, f]);
});

test('a freed relay tag is not handed out again before the counter wraps (after 2^31 - 1 tags)', () => {
  const t = new PeerFlowTable();
  const first = flow(linkA);
  const f = flow(linkA);
  t.rekey(first); // 1
  t.rekey(f); // 2
  t.rekey(f); // 3; 2 is free
  const g = flow(linkA);
  t.rekey(g);
  assert.equal(g.tag, (PEER_TAG_BIT | 4) >>> 0);
  assert.equal(first.tag, (PEER_TAG_BIT | 1) >>> 0);
});

test('peer tags are per link; a new one replaces the old; remove forgets only where the flow is still keyed', () => {
  const t = new PeerFlowTable();
  const f = flow(linkA);
  const g = flow(linkB);
  t.rekey(f);
  t.rekey(g);
  t.setPeerTag(f, 10);
  t.setPeerTag(g, 10);
  assert.equal(t.byPeerTag(linkA, 10), f);
  assert.equal(t.byPeerTag(linkB, 10), g);
  t.setPeerTag(f, 11);
  assert.equal(t.byPeerTag(linkA, 10), undefined);
  assert.equal(t.byPeerTag(linkA, 11), f);
  assert.deepEqual([...t.ofLink(linkA)], [f]);
  assert.deepEqual([...t.ofLink({ peer: 'c' } as PeerLink)], []);
  const h = flow(linkA);
  t.rekey(h);
  t.setPeerTag(h, 11); // h now holds peer tag 11 on link a
  t.remove(f); // f is still keyed by its relay tag, no longer by peer tag 11
  assert.equal(t.get(f.tag), undefined);
  assert.equal(t.byPeerTag(linkA, 11), h);
  t.remove(h);
  assert.equal(t.byPeerTag(linkA, 11), undefined);
  assert.deepEqual([...t.values()], [g]);
});

test('tags closed while down: kept in order up to 1024, taken once', () => {
  const t = new PeerFlowTable();
  for (let i = 0; i < 1100; i++) t.closeLater(i);
  const taken = t.takeClosed();
  assert.equal(taken.length, 1024);
  assert.deepEqual(taken.slice(0, 3), [0, 1, 2]);
  assert.equal(taken.at(-1), 1023);
  assert.deepEqual(t.takeClosed(), []);
});
