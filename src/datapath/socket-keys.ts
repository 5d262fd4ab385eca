import {
  DatagramOpener, DatagramSealer, type OpenerOptions, type SealerOptions,
} from '../protocol/tunnel/index.js';
import type { UdpListener } from './udp-datapath.js';

/** The socket a sealer sends on now: the agent's may be replaced during the sealer's life. */
export type SocketRef = () => UdpListener | null | undefined;

/**
 * A tunnel sealer that also sends: `sendData` seals a data datagram and hands it to its socket.
 * This one seals in JavaScript (the js datapath, and any socket the native batch does not own);
 * tunnel-keys.ts gives the native one where the datapath is native. Both take sequences from the
 * same counter, so single seals (keepalives) and batch seals never reuse a nonce.
 */
export class SocketSealer extends DatagramSealer {
  constructor(
    opts: SealerOptions,
    protected readonly socket: SocketRef,
  ) {
    super(opts);
  }

  /**
   * Seals one data datagram (as `sealData`) and sends it to `address:port`. Throws what `sealData`
   * throws (bad arguments, 'sequence-exhausted'); a socket that is gone or closing drops it.
   */
  sendData(tag: number, payload: Uint8Array, originBlock: Buffer | undefined, port: number, address: string): void {
    const out = this.sealData(tag, payload, originBlock);
    try {
      this.socket()?.send(out, port, address);
    } catch {
      /* the socket is closing */
    }
  }

  /** The socket data datagrams leave from now. */
  get sendSocket(): UdpListener | null | undefined {
    return this.socket();
  }

  /** Gives back what the key holds outside JavaScript (nothing here). Idempotent. */
  release(): void {}
}

/** A tunnel opener with a lifetime: `release` when its keys are forgotten (rekey, reconnect, close). */
export class SocketOpener extends DatagramOpener {
  /** Gives back what the key holds outside JavaScript (nothing here). Idempotent. */
  release(): void {}
}
