import type { Endpoint } from '../core/address.js';
import { SluiceError } from '../core/errors.js';
import type { DatagramReceiver } from '../upstream/dialer.js';
import { Connectee, type ConnecteeUplink } from './connectee.js';

/** Re-tagged connectees whose old tag still finds them (answers in flight on the old tag). */
const RETAGGED_KEPT = 1024;

/**
 * The UDP connectees of one agent link, by tag (docs/tunnel-protocol.md §6). Tags are never 0 and
 * never reused while a connectee or a recent re-tag holds them. When the agent drops its side of
 * a session (DATAGRAM_CLOSE), a re-taggable connectee gets a new tag and keeps its old one as an
 * alias for the last RETAGGED_KEPT re-tags, so answers sent on the old tag still arrive.
 */
export class ConnecteeTable {
  readonly #current = new Map<number, Connectee>();
  /** Old tag -> connectee, for the last RETAGGED_KEPT re-tags. */
  readonly #retagged = new Map<number, Connectee>();
  #nextTag = 1;

  get size(): number {
    return this.#current.size;
  }

  open(uplink: ConnecteeUplink, serviceId: number, client: Endpoint, receiver: DatagramReceiver, retag: boolean, port?: number): Connectee {
    const c = new Connectee(uplink, this.#allocateTag(), serviceId, client, receiver, retag, port);
    this.#current.set(c.tag, c);
    return c;
  }

  /** The connectee a datagram on `tag` is for: its current tag or a kept alias. */
  find(tag: number): Connectee | undefined {
    return this.#current.get(tag) ?? this.#retagged.get(tag);
  }

  /** Forgets `c` if `tag` is still its current tag; true when it was. */
  forget(c: Connectee): boolean {
    if (this.#current.get(c.tag) !== c) return false;
    this.#current.delete(c.tag);
    return true;
  }

  /** Ends the connectees of one service (unpublished): their receivers hear onUpstreamError. */
  endService(serviceId: number): void {
    for (const c of [...this.#current.values()]) {
      if (c.serviceId !== serviceId) continue;
      this.#current.delete(c.tag);
      c.closed = true;
      c.receiver.onUpstreamError(new SluiceError('SLUICE_ERR_CLOSED', 'the service was unpublished'));
    }
  }

  /** The link closed: every connectee is closed, silently. */
  closeAll(): void {
    for (const c of this.#current.values()) c.closed = true;
    this.#current.clear();
  }

  /**
   * The agent dropped its session on `tag`: a re-taggable connectee takes a new tag for its next
   * datagram (with an origin again); one whose tag others hold (a peer flow) ends instead.
   */
  agentClosed(tag: number): void {
    const c = this.#current.get(tag);
    if (!c) return;
    this.#current.delete(tag);
    if (!c.retag) {
      c.closed = true;
      c.receiver.onUpstreamError(new SluiceError('SLUICE_ERR_CLOSED', 'the agent dropped the session'));
      return;
    }
    this.#retagged.set(tag, c);
    if (this.#retagged.size > RETAGGED_KEPT) this.#retagged.delete(this.#retagged.keys().next().value!);
    c.tag = this.#allocateTag();
    c.answered = false;
    this.#current.set(c.tag, c);
  }

  #allocateTag(): number {
    let tag = this.#nextTag;
    while (tag === 0 || this.#current.has(tag) || this.#retagged.has(tag)) tag = (tag + 1) >>> 0;
    this.#nextTag = (tag + 1) >>> 0;
    return tag;
  }
}
