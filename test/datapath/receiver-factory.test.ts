import assert from 'node:assert/strict';
import type { ListenerReceiver, UdpSender } from '../../src/datapath/udp-datapath.js';
import { udpClient } from '../helpers/net.js';
import { perDatapath } from './datapaths.js';

const { test, datapathOf } = perDatapath();

/** Answers each datagram through the listener it was built with, upper-cased. */
class Echo implements ListenerReceiver {
  constructor(readonly via: UdpSender) {}
  onDatagram(buf: Buffer, address: string, port: number): void {
    this.via.send(Buffer.from(buf.toString().toUpperCase()), port, address);
  }
  onSendError(): void {}
}

test('listen with a receiver factory: the receiver is built once from the bound listener, before any datagram, and answers through it', async (t) => {
  const dp = datapathOf(t)!;
  const built: Echo[] = [];
  const listener = await dp.listen('127.0.0.1', 0, (bound) => {
    assert.ok(bound.local.port > 0, 'the listener is bound when its receiver is built');
    const e = new Echo(bound);
    built.push(e);
    return e;
  });
  t.after(() => listener.close());
  assert.equal(built.length, 1);
  assert.equal(listener.receiver, built[0], 'the listener holds the receiver its factory built');
  assert.equal(built[0]!.via.local.port, listener.local.port);
  const c = await udpClient(t);
  c.send(listener.local.port, 'ping');
  assert.equal((await c.next()).toString(), 'PING');
});

test('listen with a plain receiver still works and is the listener’s receiver', async (t) => {
  const dp = datapathOf(t)!;
  let arrived!: (text: string) => void;
  const got = new Promise<string>((resolve) => (arrived = resolve));
  const receiver: ListenerReceiver = { onDatagram: (buf) => arrived(buf.toString()), onSendError() {} };
  const listener = await dp.listen('127.0.0.1', 0, receiver);
  t.after(() => listener.close());
  assert.equal(listener.receiver, receiver);
  const c = await udpClient(t);
  c.send(listener.local.port, 'x');
  assert.equal(await got, 'x');
});
