import type { OpenerOptions, SealerOptions } from '../protocol/tunnel/index.js';
import { NativeDatapath } from './native/native-datapath.js';
import { NativeSocketOpener, NativeSocketSealer, nativeKeys, type OpenerHow } from './native/native-keys.js';
import { SocketOpener, SocketSealer, type SocketRef } from './socket-keys.js';
import type { UdpDatapath } from './udp-datapath.js';

export { SocketOpener, SocketSealer, type SocketRef, type OpenerHow };

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
 * the batch. Its owner calls `release()` when the keys are forgotten. `how.pinSource`: the owner
 * opens datagrams from one source only (the agent, from its gateway), so the batch must not open
 * this key's datagrams from any other (they would move the window and then be dropped).
 * `how.onDropped`: replays and forgeries are dropped in the batch and counted there (native only;
 * on the js datapath `open` returns every reason, as always).
 */
export function tunnelOpener(datapath: UdpDatapath, opts: OpenerOptions, how: OpenerHow = {}): SocketOpener {
  const e = datapath instanceof NativeDatapath ? nativeKeys(datapath) : null;
  return e === null ? new SocketOpener(opts) : new NativeSocketOpener(datapath as NativeDatapath, e, opts, how);
}
