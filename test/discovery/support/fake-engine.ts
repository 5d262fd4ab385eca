import { SluiceError } from '../../../src/core/errors.js';
import type { ContainerInfo } from '../../../src/discovery/container.js';
import type { ContainerEngine, EngineEvent, EngineIdentity } from '../../../src/discovery/engine-client.js';

interface Subscription {
  onEvent: (e: EngineEvent) => void;
  end: () => void;
}

/**
 * An engine in memory: containers run and stop, events go to live subscriptions, and the whole
 * engine can go down (every call fails as an unreachable socket does) and come back.
 */
export class FakeEngine implements ContainerEngine {
  readonly containers = new Map<string, ContainerInfo>();
  readonly #subs = new Set<Subscription>();
  #down = false;
  readonly calls = { identify: 0, list: 0, inspect: 0, subscribe: 0 };

  constructor(readonly names: { die: string[]; remove: string } = { die: ['die', 'stop'], remove: 'destroy' }) {}

  get subscribers(): number {
    return this.#subs.size;
  }

  #check(): void {
    if (this.#down) throw new SluiceError('SLUICE_ERR_ENGINE', 'GET /_ping: ECONNREFUSED');
  }

  async identify(): Promise<EngineIdentity> {
    this.calls.identify++;
    this.#check();
    return { engine: 'fake', version: '1', apiVersion: '1.41' };
  }

  async listRunning(): Promise<ContainerInfo[]> {
    this.calls.list++;
    this.#check();
    return [...this.containers.values()].filter((c) => c.state === 'running');
  }

  async runningContainer(id: string): Promise<ContainerInfo | undefined> {
    this.calls.inspect++;
    this.#check();
    const c = this.containers.get(id);
    return c?.state === 'running' ? c : undefined;
  }

  async subscribe(signal: AbortSignal, onEvent: (e: EngineEvent) => void): Promise<{ ended: Promise<void> }> {
    this.calls.subscribe++;
    this.#check();
    let end!: () => void;
    const ended = new Promise<void>((resolve) => (end = resolve));
    const sub: Subscription = { onEvent, end };
    this.#subs.add(sub);
    const stop = () => {
      this.#subs.delete(sub);
      end();
    };
    signal.addEventListener('abort', stop, { once: true });
    void ended.then(() => {
      signal.removeEventListener('abort', stop);
      this.#subs.delete(sub);
    });
    return { ended };
  }

  emit(action: string, id: string): void {
    for (const s of this.#subs) s.onEvent({ action, id });
  }

  run(c: ContainerInfo): ContainerInfo {
    this.containers.set(c.id, { ...c, state: 'running' });
    this.emit('start', c.id);
    return c;
  }

  stop(id: string): void {
    const c = this.containers.get(id);
    if (c) this.containers.set(id, { ...c, state: 'exited' });
    for (const action of this.names.die) this.emit(action, id);
  }

  remove(id: string): void {
    this.containers.delete(id);
    this.emit(this.names.remove, id);
  }

  /** The engine stops: every stream ends and every call fails until `up()`. */
  down(): void {
    this.#down = true;
    for (const s of [...this.#subs]) s.end();
  }

  up(): void {
    this.#down = false;
  }
}
