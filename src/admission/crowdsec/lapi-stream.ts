import { timeoutSignal, type Clock } from '../../core/clock.js';
import { SluiceError } from '../../core/errors.js';
import { parseStreamBody, type StreamBody } from './stream-body.js';
import { USER_AGENT } from './settings.js';

/** Why a pull failed. Stable strings: counted in stats and metrics, shown in the ops log. */
export type PullFailure =
  | 'auth' //        401/403: wrong or revoked bouncer key
  | 'http' //        any other status than 200
  | 'unreachable' // no connection (refused, reset, DNS, TLS)
  | 'timeout' //     no complete answer within `timeout`
  | 'malformed'; //  200, but the body is not a decision stream

export const PULL_FAILURES: readonly PullFailure[] = ['auth', 'http', 'unreachable', 'timeout', 'malformed'];

/** A failed pull; `kind` says which, the message says what the LAPI did, `cause` keeps the original. */
export class CrowdsecPullError extends SluiceError {
  override name = 'CrowdsecPullError';
  constructor(
    readonly kind: PullFailure,
    message: string,
    options?: ErrorOptions,
  ) {
    super('SLUICE_ERR_CROWDSEC', message, options);
  }
}

/**
 * GET /v1/decisions/stream as a bouncer: X-Api-Key, a User-Agent, `startup=true` for the full
 * list, otherwise the changes since this key's previous pull (the LAPI keeps that cursor per
 * bouncer, so one key must serve one Sluice). Only Ip and Range scopes are asked for.
 *
 * Rejects with CrowdsecPullError; aborting `signal` (or `timeoutMs` passing on `clock`) cancels the request
 * including the body read.
 */
/**
 * Largest answer read. CrowdSec's largest community blocklists are a few tens of thousands of
 * decisions (about 200 bytes each); an answer past this is refused instead of being held in memory.
 */
export const MAX_STREAM_BODY_BYTES = 64 * 1024 * 1024;

export async function pullDecisionStream(
  baseUrl: string, apiKey: string, startup: boolean, timeoutMs: number, clock: Clock, signal: AbortSignal, maxBodyBytes = MAX_STREAM_BODY_BYTES,
): Promise<StreamBody> {
  const url = new URL('v1/decisions/stream', baseUrl);
  url.searchParams.set('startup', String(startup));
  url.searchParams.set('scopes', 'ip,range');
  const timeout = timeoutSignal(clock, timeoutMs);
  const both = AbortSignal.any([signal, timeout.signal]);
  let status: number;
  let text: string;
  try {
    const res = await fetch(url, {
      headers: { 'X-Api-Key': apiKey, 'User-Agent': USER_AGENT, Accept: 'application/json' },
      redirect: 'error',
      signal: both,
    });
    status = res.status;
    const body = await readCapped(res, maxBodyBytes);
    if (body === undefined) {
      throw new CrowdsecPullError('malformed', `${url.origin} sent an answer larger than ${maxBodyBytes} bytes; it was not read further`);
    }
    text = body;
  } catch (err) {
    if (err instanceof CrowdsecPullError) throw err;
    if (timeout.signal.aborted) throw new CrowdsecPullError('timeout', `no answer from ${url.origin} within ${timeoutMs}ms`, { cause: err });
    if (signal.aborted) throw new CrowdsecPullError('unreachable', 'pull cancelled', { cause: err });
    throw new CrowdsecPullError('unreachable', `cannot reach ${url.origin}: ${networkReason(err)}`, { cause: err });
  } finally {
    timeout.cancel();
  }
  if (status === 401 || status === 403) {
    throw new CrowdsecPullError('auth', `${url.origin} refused the bouncer key (HTTP ${status}${apiMessage(text)}); check crowdsec.apiKey (cscli bouncers list)`);
  }
  if (status !== 200) throw new CrowdsecPullError('http', `${url.origin} answered HTTP ${status}${apiMessage(text)}`);
  const body = parseStreamBody(text);
  if (typeof body === 'string') throw new CrowdsecPullError('malformed', `${url.origin} sent a body that is not a decision stream: ${body}`);
  return body;
}

/** The body as text, or undefined (and the download cancelled) once it passes `max` bytes. */
async function readCapped(res: Response, max: number): Promise<string | undefined> {
  if (!res.body) return '';
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (declared > max) {
    await res.body.cancel();
    return undefined;
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
    total += chunk.byteLength;
    if (total > max) return undefined; // leaving the loop cancels the download
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total).toString('utf8');
}

/** The errno code or message under fetch's generic "fetch failed". */
function networkReason(err: unknown): string {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && !code.startsWith('UND_ERR_') ) return code;
    const next = (e as { cause?: unknown }).cause;
    if (!next) return (e as Error).message ?? String(e);
    e = next;
  }
  return String(err);
}

/** `: <message>` from a LAPI error body (`{"message": "..."}`), shortened; empty when there is none. */
function apiMessage(text: string): string {
  try {
    const m = (JSON.parse(text) as { message?: unknown }).message;
    return typeof m === 'string' ? `: ${m.slice(0, 120)}` : '';
  } catch {
    return text ? `: ${JSON.stringify(text.slice(0, 80))}` : '';
  }
}
