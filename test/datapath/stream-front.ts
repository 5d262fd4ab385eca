import type { TestContext } from 'node:test';
import { once } from 'node:events';
import net from 'node:net';
import type { StreamConn, StreamDatapath, StreamListener } from '../../src/datapath/stream-datapath.js';

/** What a read of a held connection returns when nothing is there yet. */
export const EAGAIN = -11;

export interface HeldFront {
  /** A listener on `dp` whose accepted ends are kept, undialed, in `upstreams`. */
  readonly upstream: StreamListener;
  readonly upstreams: StreamConn[];
  /** The relay's end of `client`, accepted by a second listener and not yet dialed for. */
  readonly front: StreamConn;
  readonly client: net.Socket;
}

/**
 * The start of a relayed connection, stopped before the dial: a client connected to a listener on
 * `dp` (and `first` written and sent, when given), its end accepted; an upstream listener beside
 * it for the dial. Everything is closed after `t`.
 */
export async function heldFront(t: TestContext, dp: StreamDatapath, first?: string): Promise<HeldFront> {
  const upstreams: StreamConn[] = [];
  const upstream = await dp.listen('127.0.0.1', 0, (c) => upstreams.push(c));
  t.after(() => upstreams.forEach((c) => c.destroy()));
  let front: StreamConn | undefined;
  let accepted!: () => void;
  const frontAccepted = new Promise<void>((resolve) => (accepted = resolve));
  const listener = await dp.listen('127.0.0.1', 0, (c) => {
    front = c;
    accepted();
  });
  t.after(() => Promise.all([listener.close(), upstream.close()]));
  const client = net.connect(listener.local.port, '127.0.0.1');
  client.on('error', () => {});
  t.after(() => client.destroy());
  await once(client, 'connect');
  if (first !== undefined) await new Promise<void>((resolve, reject) => client.write(first, (err) => (err ? reject(err) : resolve())));
  await frontAccepted;
  return { upstream, upstreams, front: front!, client };
}
