import type { Endpoint } from '../../core/address.js';
import type { IsolatedSocket, ListenerReceiver } from '../udp-datapath.js';
import { NativeListener, type NativeEngine } from './native-sockets.js';

/**
 * The length field of a receive record that names a source which filled a watched listener's
 * share several harvests in a row (native/src/heavy.cc kHeavySourceRecord): no datagram, the
 * source in the record's address fields.
 */
export const HEAVY_SOURCE_RECORD = -65536;

/**
 * A client's own socket beside a listener (native/src/isolate.cc): to the engine it is one more
 * listener (records carry the source, sends name their destination), and its datagrams go to the
 * listener's receiver, so the session table finds the same session by the client's address.
 */
export class NativeIsolatedSocket extends NativeListener implements IsolatedSocket {
  constructor(
    dp: NativeEngine,
    id: number,
    local: Endpoint,
    receiver: ListenerReceiver,
    private readonly drops: (id: number) => number,
    private readonly buffers: (id: number, rcvbufBytes: number) => boolean,
    private readonly budget: (id: number) => number,
  ) {
    super(dp, id, local, local.family, receiver);
  }

  kernelDrops(): number {
    const id = this.socketId;
    return id < 0 ? -1 : this.drops(id);
  }

  budgetDrops(): number {
    const id = this.socketId;
    return id < 0 ? 0 : this.budget(id);
  }

  receiveBuffer(bytes: number): boolean {
    const id = this.socketId;
    return id >= 0 && this.buffers(id, bytes);
  }
}
