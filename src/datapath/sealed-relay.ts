import type { Socket } from 'node:net';
import { RecordReader, RecordSealer, SealedRecordError, type RecordEvent } from '../protocol/tunnel/index.js';
import type { PairCounters, PairEnd, SealedKeys } from './stream-datapath.js';

/**
 * Joins a plain socket to a sealed data connection in JavaScript (docs/tunnel-protocol.md, "Data
 * connections"): plain bytes leave as DATA records, records are opened and written plain; a FIN
 * of `plain` becomes END, an END becomes a FIN (shutdown) of `plain`. A sealed side that ends
 * without END, fails authentication or breaks the format resets `plain` (RST) and itself; a plain
 * side that resets resets the sealed side (no END), which the far end turns into a reset: resets
 * propagate. Both directions ended cleanly: both sockets close. Backpressure: each reader is paused
 * while the other side's writer is above its high-water mark. `idleTimeoutMs` of no bytes on
 * `plain` either way (0: never) ends both. The fallback of every StreamDatapath.pipeSealed.
 *
 * Ownership: takes both sockets (made with allowHalfOpen). `onEnd` is called once, unless the
 * returned `stop` ended the relay first; `stop` returns the counters, closes `plain` and resets the
 * sealed side. With `keep`, both directions ended cleanly leave `sealed` open instead: paused, the
 * relay's listeners removed, bytes read past the END put back (unshift), and the end says `kept`.
 */
export function relaySealed(plain: Socket, sealed: Socket, keys: SealedKeys, idleTimeoutMs: number, onEnd: (end: PairEnd) => void, keep = false): () => PairCounters {
  const sealer = new RecordSealer(keys.sealKey, keys.sealIv, keys.sealSeq);
  const reader = new RecordReader(keys.openKey, keys.openIv, keys.openSeq, keep);
  let fromClient = 0;
  let toClient = 0;
  let plainEnded = false;
  let sealedEnded = false;
  let over = false;
  let kept = false;
  let first: 'client' | 'upstream' | undefined;
  const counters = (): PairCounters => ({ bytesFromClient: fromClient, bytesToClient: toClient });
  const finish = (reason: PairEnd['reason'], code?: string, kept?: true) => {
    if (over) return;
    over = true;
    plain.setTimeout(0);
    onEnd({ reason, ...(code !== undefined ? { code } : {}), ...counters(), ...(kept ? { kept } : {}) });
  };
  /** Ends both with resets: the plain side gets an RST, the sealed side too (no END). */
  const abort = (reason: PairEnd['reason'], code?: string) => {
    plain.resetAndDestroy();
    sealed.resetAndDestroy();
    finish(reason, code);
  };
  const bothDone = () => {
    if (!plainEnded || !sealedEnded) return;
    plain.end();
    if (keep && !sealed.readableEnded) {
      sealed.pause();
      sealed.off('data', onSealedData).off('drain', onSealedDrain).off('end', onSealedEnd).off('error', onSealedError).off('close', onSealedClose);
      const rest = reader.takeRest();
      if (rest) sealed.unshift(rest);
      kept = true;
      return finish(first === 'upstream' ? 'upstream-closed' : 'client-closed', undefined, true);
    }
    sealed.end();
    finish(first === 'upstream' ? 'upstream-closed' : 'client-closed');
  };

  plain.on('data', (chunk: Buffer) => {
    fromClient += chunk.length;
    const records = sealer.data(chunk);
    let ok = true;
    for (const r of records) ok = sealed.write(r);
    if (!ok) plain.pause();
  });
  const onSealedDrain = () => plain.resume();
  sealed.on('drain', onSealedDrain);
  plain.on('end', () => {
    first ??= 'client';
    plainEnded = true;
    sealed.write(sealer.end());
    bothDone();
  });
  const events: RecordEvent[] = [];
  const onSealedData = (chunk: Buffer) => {
    events.length = 0;
    try {
      reader.push(chunk, events);
    } catch (err) {
      return abort('upstream-error', (err as SealedRecordError).code);
    }
    let ok = true;
    for (const e of events) {
      if (e.kind === 'data') {
        toClient += e.data.length;
        ok = plain.write(e.data);
      } else {
        first ??= 'upstream';
        sealedEnded = true;
        plain.end();
      }
    }
    if (!ok || (keep && sealedEnded)) sealed.pause(); // kept: nothing past END is read until the next owner
    if (sealedEnded) bothDone();
  };
  sealed.on('data', onSealedData);
  plain.on('drain', () => (keep && sealedEnded) || sealed.resume());
  const onSealedEnd = () => {
    if (!reader.ended) abort('upstream-error', 'ESEALED_TRUNCATED');
  };
  sealed.on('end', onSealedEnd);
  plain.on('error', (err: NodeJS.ErrnoException) => abort('client-error', err.code));
  const onSealedError = (err: NodeJS.ErrnoException) => abort('upstream-error', err.code);
  sealed.on('error', onSealedError);
  // Closed without an end or error seen here (destroyed by someone else): as a reset.
  plain.on('close', () => over || abort(plainEnded ? 'upstream-error' : 'client-error'));
  const onSealedClose = () => over || abort('upstream-error', 'ESEALED_TRUNCATED');
  sealed.on('close', onSealedClose);
  if (idleTimeoutMs > 0) {
    plain.setTimeout(idleTimeoutMs);
    plain.on('timeout', () => abort('idle-timeout'));
  }
  plain.resume();
  sealed.resume();
  return () => {
    const c = counters();
    over = true;
    plain.setTimeout(0);
    plain.destroy(); // as relayTcp's stop; a caller that wants an RST resets it first
    if (!kept) sealed.resetAndDestroy(); // a kept connection is no longer this relay's
    return c;
  };
}
