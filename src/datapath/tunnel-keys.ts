import type { OpenerOptions, SealerOptions } from '../protocol/tunnel/index.js';
import { NativeDatapath } from './native/native-datapath.js';
import { NativeSocketOpener, NativeSocketSealer, nativeKeys } from './native/native-keys.js';
import { SocketOpener, SocketSealer, type SocketRef } from './socket-keys.js';
import type { UdpDatapath } from './udp-datapath.js';

export { SocketOpener, SocketSealer, type SocketRef };

/**
 * The sealer of one direction of a tunnel session whose datagrams leave through `socket` of
 * `datapath`: sealed in the native batch where the datapath is native (docs/datapath.md), else in
 * JavaScript. Same bytes either way. Its owner calls `release()` when the keys are forgotten.
 */
export function tunnelSealer(datapath: UdpDatapath, opts: SealerOptions, socket: SocketRef): SocketSealer {
  const e = datapath instanceof NativeDatapath ? nativeKeys(datapath) : null;
  return e === null ? new SocketSealer(opts, socket) : new NativeSocketSealer(datapath as NativeDatapath, e, opts, socket);
}

/**
 * The opener of one direction of a tunnel session whose datagrams arrive on a socket of
 * `datapath`: key and replay window in the native engine where the datapath is native, opened in
 * the batch. Its owner calls `release()` when the keys are forgotten. `pinSource`: the owner opens
 * datagrams from one source only (the agent, from its gateway), so the batch must not open this
 * key's datagrams from any other (they would move the window and then be dropped).
 */
export function tunnelOpener(datapath: UdpDatapath, opts: OpenerOptions, pinSource = false): SocketOpener {
  const e = datapath instanceof NativeDatapath ? nativeKeys(datapath) : null;
  return e === null ? new SocketOpener(opts) : new NativeSocketOpener(datapath as NativeDatapath, e, opts, pinSource);
}
