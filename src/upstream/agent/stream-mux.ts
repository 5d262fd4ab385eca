import type { Endpoint } from '../../core/address.js';
import { SluiceError } from '../../core/errors.js';
import type { ControlMessage, StreamOpen, StreamResetCode, TunnelRole } from '../../protocol/tunnel/index.js';
import type { ControlChannel } from './control-channel.js';
import { StreamResetError, TunnelStream, type StreamLink } from './tunnel-stream.js';

export interface StreamMuxOptions {
  readonly role: TunnelRole;
  /** This end's initial window per stream (announced in HELLO or AUTH_OK). */
  readonly localWindow: number;
  /** The peer's initial window per stream. */
  readonly peerWindow: number;
  /** Open streams at most; more are reset with `limit`. */
  readonly maxStreams: number;
}

/**
 * The TCP streams of one control channel (docs/tunnel-protocol.md §5). The gateway opens even
 * ids, the agent odd ones; an id is never reused. Frames for ids that are gone (reset or
 * finished while frames were in flight) are ignored. When the channel ends, every stream is
 * destroyed: they cannot outlive the connection that carries them.
 */
export class StreamMux implements StreamLink {
  readonly #streams = new Map<number, TunnelStream>();
  readonly #opening = new Map<number, (err?: Error) => void>();
  #nextId: number;
  #highestPeerId = 0;

  constructor(
    private readonly channel: ControlChannel,
    private readonly opts: StreamMuxOptions,
    /** A stream the peer opened (agent side: a public client). Call `accept` or `stream.reset`. */
    private readonly onPeerOpen: (stream: TunnelStream, m: StreamOpen) => void = (s) => s.reset('refused'),
  ) {
    this.#nextId = opts.role === 'gateway' ? 2 : 1;
  }

  get size(): number {
    return this.#streams.size;
  }

  /**
   * Opens a stream to the agent's service `serviceId` and resolves once the agent accepted it
   * (it reached the local service). Rejects with SluiceError: DIAL_FAILED (reset by the agent),
   * DIAL_TIMEOUT, LIMIT, CLOSED.
   *
   * `beforeOpen` is called synchronously with the new stream id just before STREAM_OPEN is sent
   * (an agent sends PEER_OPEN for the id there, so the gateway sees it first).
   */
  open(
    serviceId: number,
    client: Endpoint,
    server: Endpoint,
    timeoutMs: number,
    signal: AbortSignal,
    beforeOpen?: (streamId: number) => void,
  ): Promise<TunnelStream> {
    if (!this.channel.isOpen) return Promise.reject(new SluiceError('SLUICE_ERR_DIAL_FAILED', 'the agent is not connected'));
    if (this.#streams.size >= this.opts.maxStreams) {
      return Promise.reject(new SluiceError('SLUICE_ERR_LIMIT', `the agent already has ${this.#streams.size} open streams`));
    }
    const id = this.#nextId;
    this.#nextId += 2;
    const stream = new TunnelStream(id, this, this.opts.peerWindow, this.opts.localWindow);
    this.#streams.set(id, stream);
    const opened = new Promise<TunnelStream>((resolve, reject) => {
      const timer = this.channel.clock.setTimeout(
        () => settle(new SluiceError('SLUICE_ERR_DIAL_TIMEOUT', `the agent did not accept the stream within ${timeoutMs}ms`)),
        timeoutMs,
      );
      const onAbort = () => settle(new SluiceError('SLUICE_ERR_CLOSED', 'stream open aborted'));
      const settle = (err?: Error) => {
        if (!this.#opening.delete(id)) return;
        timer.cancel();
        signal.removeEventListener('abort', onAbort);
        stream.off('error', onError);
        if (!err) return resolve(stream);
        if (!stream.destroyed) stream.reset(err instanceof SluiceError && err.code === 'SLUICE_ERR_DIAL_TIMEOUT' ? 'timeout' : 'cancel');
        reject(err);
      };
      const onError = (err: Error) => settle(err instanceof StreamResetError ? dialError(err.resetCode, err) : err);
      this.#opening.set(id, settle);
      stream.once('error', onError);
      // Checked first: every stream closes, and an error (its stack) per accepted stream is not free.
      stream.once('close', () => this.#opening.has(id) && settle(new SluiceError('SLUICE_ERR_DIAL_FAILED', 'the tunnel closed before the agent accepted the stream')));
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
    });
    // Registered before sending: a peer on an in-memory pipe may answer within the write.
    beforeOpen?.(id);
    this.channel.send({ type: 'stream-open', streamId: id, serviceId, client, server });
    return opened;
  }

  /** The agent reached the local service: tell the gateway. */
  accept(stream: TunnelStream): void {
    if (!stream.destroyed) this.channel.send({ type: 'stream-accept', streamId: stream.id });
  }

  /** Takes the stream messages of the channel; returns false for any other message. */
  handle(m: ControlMessage): boolean {
    switch (m.type) {
      case 'stream-open':
        this.#peerOpen(m);
        return true;
      case 'stream-accept':
        this.#opening.get(m.streamId)?.();
        return true;
      case 'stream-data':
        this.#streams.get(m.streamId)?.onPeerData(m.data);
        return true;
      case 'stream-end':
        this.#streams.get(m.streamId)?.onPeerEnd();
        return true;
      case 'stream-reset':
        this.#streams.get(m.streamId)?.onPeerReset(m.code);
        return true;
      case 'window-update':
        this.#streams.get(m.streamId)?.onWindowUpdate(m.increment);
        return true;
      default:
        return false;
    }
  }

  /** The channel is gone: every stream ends now. */
  /**
   * Destroys every stream. With `reason`, each is destroyed with it, so a relay ends its other
   * side too (a stream destroyed without an error is not ended for pipe(): the public client of a
   * vanished agent would stay open until its idle timeout).
   */
  destroyAll(reason?: Error): void {
    for (const s of [...this.#streams.values()]) {
      if (!reason) {
        s.destroy();
        continue;
      }
      s.on('error', () => {});
      s.destroy(reason);
    }
  }

  // ---- StreamLink ----
  sendData(id: number, data: Buffer): void {
    this.channel.sendStreamData(id, data);
  }
  sendEnd(id: number): void {
    this.channel.send({ type: 'stream-end', streamId: id });
  }
  sendReset(id: number, code: StreamResetCode): void {
    this.channel.send({ type: 'stream-reset', streamId: id, code });
  }
  sendWindowUpdate(id: number, increment: number): void {
    this.channel.send({ type: 'window-update', streamId: id, increment });
  }
  whenWritable(fn: () => void): void {
    this.channel.whenWritable(fn);
  }
  released(id: number): void {
    this.#streams.delete(id);
  }

  #peerOpen(m: StreamOpen): void {
    const peerParity = this.opts.role === 'gateway' ? 1 : 0;
    if (m.streamId % 2 !== peerParity || m.streamId <= this.#highestPeerId) {
      // The wrong parity for the sender, or a reused id: a peer bug.
      this.channel.send({ type: 'stream-reset', streamId: m.streamId, code: m.streamId % 2 !== peerParity ? 'refused' : 'protocol' });
      return;
    }
    this.#highestPeerId = m.streamId;
    const stream = new TunnelStream(m.streamId, this, this.opts.peerWindow, this.opts.localWindow);
    if (this.#streams.size >= this.opts.maxStreams) {
      stream.reset('limit');
      return;
    }
    this.#streams.set(m.streamId, stream);
    this.onPeerOpen(stream, m);
  }
}

/** `cause` keeps the reset (its `resetCode`), for callers that pass the code on (peer streams). */
function dialError(code: StreamResetCode, cause: StreamResetError): SluiceError {
  if (code === 'timeout') return new SluiceError('SLUICE_ERR_DIAL_TIMEOUT', 'the agent timed out connecting to the local service', { cause });
  if (code === 'limit') return new SluiceError('SLUICE_ERR_LIMIT', 'the agent refused the stream: too many streams', { cause });
  return new SluiceError('SLUICE_ERR_DIAL_FAILED', `the agent could not reach the local service (${code})`, { cause });
}
