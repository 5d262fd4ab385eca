import http from 'node:http';
import { SluiceError } from '../core/errors.js';
import { containerFromSummary, type ContainerInfo } from './container.js';

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

const REQUEST_TIMEOUT_MS = 10_000;
/** A line longer than this is not an event; the stream is treated as broken. */
const MAX_EVENT_LINE_BYTES = 1 << 20;

/** The engine's HTTP API on its unix socket, with node:http (no client library needed for four calls). */
export class UnixSocketEngine implements ContainerEngine {
  constructor(readonly socketPath: string) {}

  async identify(signal: AbortSignal): Promise<EngineIdentity> {
    const v = (await this.#getJson('/version', signal)) as { Version?: string; ApiVersion?: string; Components?: { Name?: string }[] };
    const podman = (v.Components ?? []).some((c) => /podman/i.test(c.Name ?? ''));
    return { engine: podman ? 'podman' : 'docker', version: v.Version ?? '?', apiVersion: v.ApiVersion ?? '?' };
  }

  async listRunning(signal: AbortSignal): Promise<ContainerInfo[]> {
    const list = await this.#getJson('/containers/json', signal);
    if (!Array.isArray(list)) throw new SluiceError('SLUICE_ERR_ENGINE', 'GET /containers/json: expected a JSON array');
    return list.map(containerFromSummary).filter((c): c is ContainerInfo => c !== undefined && c.state === 'running');
  }

  async runningContainer(id: string, signal: AbortSignal): Promise<ContainerInfo | undefined> {
    const filters = encodeURIComponent(JSON.stringify({ id: [id] }));
    const list = await this.#getJson(`/containers/json?filters=${filters}`, signal);
    if (!Array.isArray(list)) throw new SluiceError('SLUICE_ERR_ENGINE', 'GET /containers/json: expected a JSON array');
    // The id filter matches prefixes; keep the exact one.
    return list.map(containerFromSummary).find((c) => c !== undefined && c.id === id && c.state === 'running');
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
          reject(new SluiceError('SLUICE_ERR_ENGINE', `GET ${path}: HTTP ${res.statusCode}`));
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
              const e = line === '' ? undefined : parseEvent(line);
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
        res.on('data', (c: Buffer) => chunks.push(c));
        res.once('error', (err) => reject(engineError(path, err)));
        res.once('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          if (res.statusCode !== 200) {
            reject(new SluiceError('SLUICE_ERR_ENGINE', `GET ${path}: HTTP ${res.statusCode} ${body.slice(0, 200).trim()}`));
            return;
          }
          try {
            resolve(JSON.parse(body));
          } catch (err) {
            reject(new SluiceError('SLUICE_ERR_ENGINE', `GET ${path}: the answer is not JSON`, { cause: err }));
          }
        });
      });
      req.once('error', (err) => reject(engineError(path, err)));
      req.end();
    });
  }
}

function engineError(path: string, err: Error): SluiceError {
  const code = (err as NodeJS.ErrnoException).code ?? err.name;
  return new SluiceError('SLUICE_ERR_ENGINE', `GET ${path}: ${code}`, { cause: err });
}

/** Docker writes `Action` (and the older `status`); Podman's compatible API writes both too. */
function parseEvent(line: string): EngineEvent | undefined {
  let e: { Type?: unknown; Action?: unknown; status?: unknown; id?: unknown; Actor?: { ID?: unknown } };
  try {
    e = JSON.parse(line) as typeof e;
  } catch {
    return undefined;
  }
  if (e.Type !== undefined && e.Type !== 'container') return undefined;
  const action = typeof e.Action === 'string' ? e.Action : typeof e.status === 'string' ? e.status : undefined;
  const id = typeof e.Actor?.ID === 'string' ? e.Actor.ID : typeof e.id === 'string' ? e.id : undefined;
  // `exec_start: sh -c ...`, `health_status: healthy`: the verb is before the colon.
  return action && id ? { action: action.split(':')[0]!.trim(), id } : undefined;
}
