import type { Endpoint } from '../../core/address.js';
import type { Timer } from '../../core/clock.js';
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
  readonly #opening = new Map<number, { readonly stream: TunnelStream; readonly timer: Timer; readonly settled: (err?: SluiceError) => void }>();
  /** Streams on data connections until their answer (openOnData). */
  readonly #onData = new Map<number, { readonly timer: Timer; readonly settled: (err?: SluiceError) => void }>();
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
    return new Promise<TunnelStream>((resolve, reject) => {
      if (signal.aborted) return reject(new SluiceError('SLUICE_ERR_CLOSED', 'stream open aborted'));
      let id = 0;
      const onAbort = () => this.#settle(id, new SluiceError('SLUICE_ERR_CLOSED', 'stream open aborted'), 'cancel');
      let stream: TunnelStream;
      try {
        stream = this.openEarly(serviceId, client, server, timeoutMs, (err) => {
          signal.removeEventListener('abort', onAbort);
          if (err) reject(err);
          else resolve(stream);
        }, beforeOpen);
      } catch (err) {
        return reject(err);
      }
      id = stream.id;
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * Opens a stream and returns it at once: data written before the agent accepts rides right
   * behind STREAM_OPEN (docs/tunnel-protocol.md §5 step 2), within the peer's window. `settled`
   * is called once, never synchronously: without an error at STREAM_ACCEPT; with a SluiceError
   * (DIAL_FAILED, DIAL_TIMEOUT, LIMIT) when the agent reset the stream, the deadline passed or the
   * stream closed first; the stream is then destroyed without an error of its own. Throws
   * SluiceError DIAL_FAILED or LIMIT when no stream can be opened.
   */
  openEarly(
    serviceId: number,
    client: Endpoint,
    server: Endpoint,
    timeoutMs: number,
    settled: (err?: SluiceError) => void,
    beforeOpen?: (streamId: number) => void,
  ): TunnelStream {
    if (!this.channel.isOpen) throw new SluiceError('SLUICE_ERR_DIAL_FAILED', 'the agent is not connected');
    if (this.#streams.size >= this.opts.maxStreams) throw new SluiceError('SLUICE_ERR_LIMIT', `the agent already has ${this.#streams.size} open streams`);
    const id = this.#nextId;
    this.#nextId += 2;
    const stream = new TunnelStream(id, this, this.opts.peerWindow, this.opts.localWindow);
    this.#streams.set(id, stream);
    const timer = this.channel.clock.setTimeout(
      () => this.#settle(id, new SluiceError('SLUICE_ERR_DIAL_TIMEOUT', `the agent did not accept the stream within ${timeoutMs}ms`), 'timeout'),
      timeoutMs,
    );
    this.#opening.set(id, { stream, timer, settled });
    // Registered before sending: a peer on an in-memory pipe may answer within the write.
    beforeOpen?.(id);
    this.channel.send({ type: 'stream-open', streamId: id, serviceId, client, server });
    return stream;
  }

  /**
   * Opens a stream whose bytes travel on the agent's data connection `counter`, not in STREAM_DATA
   * (docs/tunnel-protocol.md, "Data connections"): STREAM_OPEN carries the counter; `settled` is
   * called once, never synchronously, as openEarly's: at STREAM_ACCEPT, with the reset's meaning,
   * DIAL_TIMEOUT, or DIAL_FAILED when the channel ends first. Returns a cancel: no frame (the data
   * connection's close tells the agent), or with `reset` a STREAM_RESET(cancel), for a data
   * connection whose close cannot reach the agent. Throws SluiceError DIAL_FAILED when the channel is gone.
   */
  openOnData(
    serviceId: number, client: Endpoint, server: Endpoint, counter: number, timeoutMs: number, settled: (err?: SluiceError) => void,
    /** Called with the new stream id just before STREAM_OPEN is sent (a trunk expects the stream there). */
    beforeOpen?: (streamId: number) => void,
  ): (reset?: boolean) => void {
    if (!this.channel.isOpen) throw new SluiceError('SLUICE_ERR_DIAL_FAILED', 'the agent is not connected');
    const id = this.#nextId;
    this.#nextId += 2;
    const timer = this.channel.clock.setTimeout(() => {
      if (!this.#onData.delete(id)) return;
      this.channel.send({ type: 'stream-reset', streamId: id, code: 'timeout' });
      settled(new SluiceError('SLUICE_ERR_DIAL_TIMEOUT', `the agent did not accept the stream within ${timeoutMs}ms`));
    }, timeoutMs);
    this.#onData.set(id, { timer, settled });
    beforeOpen?.(id);
    this.channel.send({ type: 'stream-open', streamId: id, serviceId, client, server, dataConnection: counter });
    return (reset = false) => {
      this.#onData.get(id)?.timer.cancel();
      this.#onData.delete(id);
      if (reset && this.channel.isOpen) this.channel.send({ type: 'stream-reset', streamId: id, code: 'cancel' });
    };
  }

  /** The answer to a stream of openOnData; false when `id` is not one waiting for it. */
  #settleOnData(id: number, code?: StreamResetCode): boolean {
    const o = this.#onData.get(id);
    if (!o) return false;
    this.#onData.delete(id);
    o.timer.cancel();
    o.settled(code === undefined ? undefined : dialError(code, new StreamResetError(code)));
    return true;
  }

  /**
   * Ends the opening of stream `id`: accepted (no `err`), or failed, resetting the stream with
   * `reset` (null: it is gone or the peer reset it already).
   */
  #settle(id: number, err?: SluiceError, reset: StreamResetCode | null = null): void {
    const o = this.#opening.get(id);
    if (!o) return;
    this.#opening.delete(id);
    o.timer.cancel();
    if (err && reset !== null) o.stream.reset(reset);
    o.settled(err);
  }

  /**
   * STREAM_RESET. Before STREAM_ACCEPT it is a failed dial, reported to the opener with the
   * reset's meaning, not an error of the stream; the stream is closed first, so whatever the
   * opener does next sends no reset back.
   */
  #peerReset(id: number, code: StreamResetCode): void {
    const o = this.#opening.get(id);
    if (!o) return this.#streams.get(id)?.onPeerReset(code);
    this.#opening.delete(id);
    o.timer.cancel();
    o.stream.onPeerReset(code, false);
    o.settled(dialError(code, new StreamResetError(code)));
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
        if (!this.#settleOnData(m.streamId)) this.#settle(m.streamId);
        return true;
      case 'stream-data':
        this.#streams.get(m.streamId)?.onPeerData(m.data);
        return true;
      case 'stream-end':
        this.#streams.get(m.streamId)?.onPeerEnd();
        return true;
      case 'stream-reset':
        if (!this.#settleOnData(m.streamId, m.code)) this.#peerReset(m.streamId, m.code);
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
    for (const [id, o] of [...this.#onData]) {
      this.#onData.delete(id);
      o.timer.cancel();
      o.settled(new SluiceError('SLUICE_ERR_DIAL_FAILED', 'the agent lost its control connection before it accepted the stream'));
    }
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
    if (this.#opening.has(id)) this.#settle(id, new SluiceError('SLUICE_ERR_DIAL_FAILED', 'the stream closed before the agent accepted it'));
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
