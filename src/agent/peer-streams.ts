import type { Duplex } from 'node:stream';
import { SluiceError } from '../core/errors.js';
import type { DialOptions } from '../upstream/dialer.js';
import type { PeerTarget } from '../upstream/peer/peer-dialer.js';
import type { PeerControl } from './peers-deps.js';

/**
 * TCP toward peers' services (docs/connect.md): a stream through the gateway whose PEER_OPEN
 * names the stream's id and goes out before STREAM_OPEN. The gateway's refusal (PEER_OPEN_ERROR)
 * comes before its reset of the stream and says why better than the reset does: kept here by
 * stream id, it is what open() rejects with.
 *
 * Contract: single-threaded. An id is known here only while its open() is pending.
 */
export class PeerStreamOpens {
  /** By stream id: the target, then the gateway's refusal if one came. */
  readonly #opening = new Map<number, PeerTarget | SluiceError>();

  /** The target of stream `id` while it opens, unless it was refused already. */
  target(id: number): PeerTarget | undefined {
    const opening = this.#opening.get(id);
    return opening instanceof SluiceError ? undefined : opening;
  }

  /** PEER_OPEN_ERROR for stream `id` (one target() knows): its open() rejects with `err`. */
  refused(id: number, err: SluiceError): void {
    this.#opening.set(id, err);
  }

  /** Opens a stream to `target` over `control`; rejects with the gateway's refusal when one came, else the stream's error. */
  async open(control: PeerControl, target: PeerTarget, opts: DialOptions): Promise<Duplex> {
    let id = 0;
    try {
      return await control.openStream(opts, (streamId) => {
        id = streamId;
        this.#opening.set(id, target);
        control.send({ type: 'peer-open', tag: id, transport: 'tcp', peer: target.peer, service: target.service });
      });
    } catch (err) {
      const refusal = this.#opening.get(id);
      throw refusal instanceof SluiceError ? refusal : err;
    } finally {
      this.#opening.delete(id);
    }
  }
}
