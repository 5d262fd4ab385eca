import http from 'node:http';
import { SluiceError } from '../core/errors.js';
import { containerFromSummary, networkingFromInspect, summaryLacksNetworking, type ContainerInfo } from './container.js';

/** One line of the engine's event stream, reduced to what discovery reads. */
export interface EngineEvent {
  /** `start`, `die`, `destroy`, ... (Docker); Podman's compatible API adds `died`, `remove`, `cleanup`, `sync`. */
  readonly action: string;
  readonly id: string;
}

export interface EngineIdentity {
  /** `docker` or `podman`, from GET /version. */
  readonly engine: string;
  readonly version: string;
  readonly apiVersion: string;
}

/**
 * A Docker-compatible engine API, as discovery uses it. Every call fails with a SluiceError
 * (SLUICE_ERR_ENGINE) that keeps the socket or HTTP error as `cause`.
 */
export interface ContainerEngine {
  identify(signal: AbortSignal): Promise<EngineIdentity>;
  /** Containers that are running now. */
  listRunning(signal: AbortSignal): Promise<ContainerInfo[]>;
  /** The container if it is running now, else undefined. */
  runningContainer(id: string, signal: AbortSignal): Promise<ContainerInfo | undefined>;
  /**
   * Subscribes to container events. Resolves once the engine has accepted the subscription (so a
   * list taken afterwards misses nothing); `ended` settles when the stream is lost or `signal`
   * aborts. `onEvent` is called in stream order.
   */
  subscribe(signal: AbortSignal, onEvent: (e: EngineEvent) => void): Promise<{ ended: Promise<void> }>;
}

/** An engine call that failed with an HTTP status (`status`), or without one (socket errors). */
export class EngineError extends SluiceError {
  override name = 'EngineError';
  constructor(
    message: string,
    readonly status: number | undefined,
    options?: ErrorOptions,
  ) {
    super('SLUICE_ERR_ENGINE', message, options);
  }
}

const REQUEST_TIMEOUT_MS = 10_000;
/** A line longer than this is not an event; the stream is treated as broken. */
const MAX_EVENT_LINE_BYTES = 1 << 20;
/** Largest JSON answer read (a list of thousands of containers is a few MB); past it the request fails. */
export const MAX_ENGINE_ANSWER_BYTES = 64 * 1024 * 1024;

/** The engine's HTTP API on its unix socket, with node:http (no client library needed for four calls). */
export class UnixSocketEngine implements ContainerEngine {
  /**
   * @param relevant Containers whose labels pass are inspected when the list leaves out their
   *   networking (Podman); the others are not worth a request each.
   */
  constructor(
    readonly socketPath: string,
    private readonly relevant: (labels: Readonly<Record<string, string>>) => boolean = () => true,
    private readonly maxAnswerBytes = MAX_ENGINE_ANSWER_BYTES,
  ) {}

  async identify(signal: AbortSignal): Promise<EngineIdentity> {
    const v = (await this.#getJson('/version', signal)) as { Version?: string; ApiVersion?: string; Components?: { Name?: string }[] };
    const podman = (v.Components ?? []).some((c) => /podman/i.test(c.Name ?? ''));
    return { engine: podman ? 'podman' : 'docker', version: v.Version ?? '?', apiVersion: v.ApiVersion ?? '?' };
  }

  async listRunning(signal: AbortSignal): Promise<ContainerInfo[]> {
    const list = await this.#getJson('/containers/json', signal);
    if (!Array.isArray(list)) throw new EngineError('GET /containers/json: expected a JSON array', 200);
    return this.#running(list, signal);
  }

  async runningContainer(id: string, signal: AbortSignal): Promise<ContainerInfo | undefined> {
    const filters = encodeURIComponent(JSON.stringify({ id: [id] }));
    const list = await this.#getJson(`/containers/json?filters=${filters}`, signal);
    if (!Array.isArray(list)) throw new EngineError('GET /containers/json: expected a JSON array', 200);
    // The id filter matches prefixes; keep the exact one.
    return (await this.#running(list.filter((s) => (s as { Id?: unknown } | null)?.Id === id), signal))[0];
  }

  async #running(summaries: unknown[], signal: AbortSignal): Promise<ContainerInfo[]> {
    const out: ContainerInfo[] = [];
    for (const s of summaries) {
      const c = containerFromSummary(s);
      if (!c || c.state !== 'running') continue;
      if (!summaryLacksNetworking(s) || !this.relevant(c.labels)) {
        out.push(c);
        continue;
      }
      const inspected = await this.#getJson(`/containers/${encodeURIComponent(c.id)}/json`, signal).catch((err: unknown) => {
        if (err instanceof EngineError && err.status === 404) return undefined; // gone meanwhile
        throw err;
      });
      if (inspected !== undefined) out.push({ ...c, ...networkingFromInspect(inspected) });
    }
    return out;
  }

  subscribe(signal: AbortSignal, onEvent: (e: EngineEvent) => void): Promise<{ ended: Promise<void> }> {
    // Podman 4.3 matches label filters on /events only as key=value, so filter by type here and
    // read labels from the list endpoint instead.
    const filters = encodeURIComponent(JSON.stringify({ type: ['container'] }));
    const path = `/events?filters=${filters}`;
    return new Promise((resolve, reject) => {
      const req = http.request({ socketPath: this.socketPath, path, method: 'GET', signal });
      req.once('error', (err) => reject(engineError(path, err)));
      req.once('response', (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          reject(new EngineError(`GET ${path}: HTTP ${res.statusCode}`, res.statusCode));
          return;
        }
        const ended = new Promise<void>((done) => {
          let buf = '';
          const stop = () => {
            req.destroy();
            done();
          };
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            buf += chunk;
            let nl: number;
            while ((nl = buf.indexOf('\n')) >= 0) {
              const line = buf.slice(0, nl).trim();
              buf = buf.slice(nl + 1);
              const e = line === '' ? undefined : parseEngineEvent(line);
              if (e) onEvent(e);
            }
            if (buf.length > MAX_EVENT_LINE_BYTES) stop();
          });
          res.once('end', stop);
          res.once('close', stop);
          res.once('error', stop);
          req.on('error', stop);
        });
        resolve({ ended });
      });
      req.end();
    });
  }

  #getJson(path: string, signal: AbortSignal): Promise<unknown> {
    const timeout = AbortSignal.any([signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]);
    return new Promise((resolve, reject) => {
      const req = http.request({ socketPath: this.socketPath, path, method: 'GET', signal: timeout }, (res) => {
        const chunks: Buffer[] = [];
        let total = 0;
        res.on('data', (c: Buffer) => {
          total += c.length;
          if (total <= this.maxAnswerBytes) return void chunks.push(c);
          chunks.length = 0;
          req.destroy();
          reject(new EngineError(`GET ${path}: the answer is larger than ${this.maxAnswerBytes} bytes`, res.statusCode));
        });
        res.once('error', (err) => reject(engineError(path, err)));
        res.once('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          if (res.statusCode !== 200) {
            reject(new EngineError(`GET ${path}: HTTP ${res.statusCode} ${body.slice(0, 200).trim()}`, res.statusCode));
            return;
          }
          try {
            resolve(JSON.parse(body));
          } catch (err) {
            reject(new EngineError(`GET ${path}: the answer is not JSON`, res.statusCode, { cause: err }));
          }
        });
      });
      req.once('error', (err) => reject(engineError(path, err)));
      req.end();
    });
  }
}

function engineError(path: string, err: Error): EngineError {
  const code = (err as NodeJS.ErrnoException).code ?? err.name;
  return new EngineError(`GET ${path}: ${code}`, undefined, { cause: err });
}

/** One line of the /events stream. Docker writes `Action` (and the older `status`); Podman's compatible API writes both too. */
export function parseEngineEvent(line: string): EngineEvent | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return undefined;
  }
  // Any JSON value may come (`null`, a number, an array): only an object can be an event.
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return undefined;
  const e = parsed as { Type?: unknown; Action?: unknown; status?: unknown; id?: unknown; Actor?: unknown };
  if (e.Type !== undefined && e.Type !== 'container') return undefined;
  const action = typeof e.Action === 'string' ? e.Action : typeof e.status === 'string' ? e.status : undefined;
  const actorId = e.Actor !== null && typeof e.Actor === 'object' ? (e.Actor as { ID?: unknown }).ID : undefined;
  const id = typeof actorId === 'string' ? actorId : typeof e.id === 'string' ? e.id : undefined;
  // `exec_start: sh -c ...`, `health_status: healthy`: the verb is before the colon.
  const verb = action?.split(':')[0]!.trim();
  return verb && id ? { action: verb, id } : undefined;
}
