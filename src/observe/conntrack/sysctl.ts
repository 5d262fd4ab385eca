import { readFile, writeFile } from 'node:fs/promises';

/**
 * Kernel parameters by their sysctl name (`net.netfilter.nf_conntrack_acct`). Conntrack
 * parameters are per network namespace: an implementation reads and writes those of the
 * namespace the conntrack tool runs in.
 */
export interface Sysctl {
  /** The current value, trimmed. Rejects if the parameter does not exist (module not loaded). */
  read(name: string): Promise<string>;
  write(name: string, value: string): Promise<void>;
}

const NAME = /^[a-z0-9_]+(\.[a-z0-9_-]+)+$/;

/** Reads and writes `/proc/sys` of this process's network namespace. Writing needs CAP_NET_ADMIN (root). */
export function procSysctl(root = '/proc/sys'): Sysctl {
  const path = (name: string) => {
    if (!NAME.test(name)) throw new TypeError(`not a sysctl name: ${name}`);
    return `${root}/${name.replaceAll('.', '/')}`;
  };
  return {
    read: async (name) => (await readFile(path(name), 'utf8')).trim(),
    write: (name, value) => writeFile(path(name), `${value}\n`),
  };
}

/**
 * One parameter set for as long as the source runs, then put back. `restore` writes the old
 * value only if the parameter still holds ours: if an operator changed it meanwhile, theirs wins.
 * Both methods are idempotent; `restore` without a change is a no-op.
 */
export class SysctlOverride {
  #previous: string | undefined;

  constructor(
    readonly sysctl: Sysctl,
    readonly name: string,
    readonly value: string,
  ) {}

  /** The value found before `apply` changed it, or undefined when nothing was changed. */
  get previous(): string | undefined {
    return this.#previous;
  }

  /** Sets the value; resolves `{ changed, previous }`. Rejects with the sysctl's own error. */
  async apply(): Promise<{ changed: boolean; previous: string }> {
    if (this.#previous !== undefined) return { changed: true, previous: this.#previous };
    const previous = await this.sysctl.read(this.name);
    if (previous === this.value) return { changed: false, previous };
    await this.sysctl.write(this.name, this.value);
    this.#previous = previous;
    return { changed: true, previous };
  }

  /** Resolves `restored: false` when there was nothing to restore or someone else has changed the value since. */
  async restore(): Promise<{ restored: boolean }> {
    const previous = this.#previous;
    if (previous === undefined) return { restored: false };
    this.#previous = undefined;
    if ((await this.sysctl.read(this.name)) !== this.value) return { restored: false };
    await this.sysctl.write(this.name, previous);
    return { restored: true };
  }
}
