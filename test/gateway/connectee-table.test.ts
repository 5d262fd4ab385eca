import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Endpoint } from '../../src/core/address.js';
import { isSluiceError } from '../../src/core/errors.js';
import type { Connectee, ConnecteeUplink } from '../../src/gateway/connectee.js';
import { ConnecteeTable } from '../../src/gateway/connectee-table.js';

const client: Endpoint = { address: '198.51.100.7', port: 40000, family: 4 };

function uplink(): ConnecteeUplink & { sent: [number, string][]; dropped: number[]; table?: ConnecteeTable } {
  const u = {
    remote: { address: '127.0.0.1', port: 1, family: 4 } as Endpoint,
    sent: [] as [number, string][],
    dropped: [] as number[],
    table: undefined as ConnecteeTable | undefined,
    sendData: (c: Connectee, payload: Buffer) => void u.sent.push([c.tag, payload.toString()]),
    dropConnectee: (c: Connectee) => {
      if (u.table?.forget(c)) u.dropped.push(c.tag);
    },
    serviceRoute: () => undefined,
  };
  return u;
}

function receiver() {
  const r = { datagrams: [] as string[], errors: [] as unknown[] };
  return { r, recv: { onUpstreamDatagram: (b: Buffer) => void r.datagrams.push(b.toString()), onUpstreamError: (e: Error) => void r.errors.push(e) } };
}

test('connectee table: tags start at 1, are unique, and a closed connectee leaves the table once', () => {
  const t = new ConnecteeTable();
  const u = uplink();
  u.table = t;
  const a = t.open(u, 1, client, receiver().recv, true);
  const b = t.open(u, 1, { ...client, port: 40001 }, receiver().recv, true);
  assert.deepEqual([a.tag, b.tag], [1, 2]);
  assert.equal(t.find(2), b);
  a.send(Buffer.from('x'), null);
  assert.deepEqual(u.sent, [[1, 'x']]);
  a.close();
  a.close();
  assert.deepEqual(u.dropped, [1]);
  assert.equal(t.size, 1);
  assert.equal(t.find(1), undefined);
});

test('connectee table: the agent dropping a session re-tags it, and the old tag still finds it', () => {
  const t = new ConnecteeTable();
  const u = uplink();
  const a = t.open(u, 1, client, receiver().recv, true);
  a.answered = true;
  t.agentClosed(a.tag);
  assert.equal(a.tag, 2);
  assert.equal(a.answered, false, 'the next datagram carries its origin again');
  assert.equal(t.find(1), a, 'answers in flight on the old tag still arrive');
  assert.equal(t.find(2), a);
  const b = t.open(u, 1, client, receiver().recv, true);
  assert.equal(b.tag, 3, 'an alias is not handed out again');
});

test('connectee table: a peer-flow connectee (no re-tag) ends when the agent drops it; unpublish ends a service', () => {
  const t = new ConnecteeTable();
  const u = uplink();
  const p = receiver();
  const flow = t.open(u, 1, client, p.recv, false);
  t.agentClosed(flow.tag);
  assert.equal(flow.closed, true);
  assert.ok(isSluiceError(p.r.errors[0], 'SLUICE_ERR_CLOSED'));
  const s1 = receiver();
  const s2 = receiver();
  const one = t.open(u, 7, client, s1.recv, true);
  const other = t.open(u, 8, client, s2.recv, true);
  t.endService(7);
  assert.equal(one.closed, true);
  assert.equal(s1.r.errors.length, 1);
  assert.equal(other.closed, false);
  assert.equal(t.size, 1);
  t.closeAll();
  assert.equal(other.closed, true);
  assert.equal(s2.r.errors.length, 0, 'a closing link ends its connectees silently');
  assert.equal(t.size, 0);
});
