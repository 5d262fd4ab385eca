import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import type { ChildProcessLike, SpawnProcess, Sysctl } from '../../../src/observe/conntrack/index.js';
import type { FlowRecord } from '../../../src/observe/flow-records.js';

/** A stand-in for the conntrack child: lines go in through `emitLine`, `exit` ends it. */
export class FakeChild extends EventEmitter implements ChildProcessLike {
  readonly stdout = new PassThrough();
  readonly stderr = new PassThrough();
  readonly signals: NodeJS.Signals[] = [];
  exited = false;
  /** Whether a signal ends it (false: it ignores SIGTERM, as a stuck process would). */
  obeys: (signal: NodeJS.Signals) => boolean = () => true;

  constructor(
    readonly pid: number | undefined,
    readonly file: string,
    readonly args: readonly string[],
  ) {
    super();
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): boolean {
    this.signals.push(signal);
    if (!this.exited && this.obeys(signal)) setImmediate(() => this.exit(null, signal));
    return true;
  }

  emitLine(line: string): void {
    this.stdout.write(`${line}\n`);
  }

  exit(code: number | null, signal: NodeJS.Signals | null = null): void {
    if (this.exited) return;
    this.exited = true;
    this.stdout.end();
    this.stderr.end();
    setImmediate(() => this.emit('close', code, signal));
  }
}

/** Records every spawn; `failNext` makes the next spawn throw or fail like ENOENT. */
export function fakeSpawner() {
  const children: FakeChild[] = [];
  let nextPid = 1000;
  let failNext: 'throw' | 'enoent' | undefined;
  const spawn: SpawnProcess = (file, args) => {
    const mode = failNext;
    failNext = undefined;
    if (mode === 'throw') throw new Error('spawn EINVAL');
    const child = new FakeChild(mode === 'enoent' ? undefined : nextPid++, file, args);
    children.push(child);
    if (mode === 'enoent') {
      setImmediate(() => {
        child.emit('error', Object.assign(new Error(`spawn ${file} ENOENT`), { code: 'ENOENT' }));
        child.exit(-2);
      });
    }
    return child;
  };
  return {
    spawn,
    children,
    get last(): FakeChild {
      return children[children.length - 1]!;
    },
    fail(mode: 'throw' | 'enoent') {
      failNext = mode;
    },
  };
}

/** sysctl values in a map; `failing` names make reads fail like a missing module. */
export function fakeSysctl(values: Record<string, string>, failing: string[] = []): Sysctl & { values: Record<string, string>; writes: string[] } {
  const writes: string[] = [];
  return {
    values,
    writes,
    async read(name) {
      if (failing.includes(name) || !(name in values)) throw Object.assign(new Error(`ENOENT ${name}`), { code: 'ENOENT' });
      return values[name]!;
    },
    async write(name, value) {
      writes.push(`${name}=${value}`);
      values[name] = value;
    },
  };
}

export function memoryRecorder() {
  const records: FlowRecord[] = [];
  return { records, write: (r: FlowRecord) => void records.push(JSON.parse(JSON.stringify(r)) as FlowRecord) };
}

/** Lets stream 'data' and queued setImmediate callbacks run. */
export async function settle(rounds = 3): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setImmediate(r));
}
