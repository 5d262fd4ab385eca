import type { TestContext } from 'node:test';
import type { Logger } from 'pino';
import { systemClock } from '../../../src/core/clock.js';
import type { SluiceConfig } from '../../../src/config/types.js';
import type { DockerConfig } from '../../../src/config/docker-config.js';
import { ContainerRoutes } from '../../../src/discovery/container-routes.js';
import type { ContainerEngine } from '../../../src/discovery/engine-client.js';
import { config, startNode } from '../../helpers/node.js';

export interface LogLine {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly fields: Record<string, unknown>;
  readonly msg: string;
}

/** A logger that keeps what it is given (pino's `(fields, message)` calling form). */
export function recordingLog(): { log: Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: LogLine['level']) => (fields: Record<string, unknown>, msg: string) => void lines.push({ level, fields, msg });
  return { log: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } as never, lines };
}

/** A reload chain like App's: one reload at a time, in call order. */
export function serialChain() {
  let chain: Promise<unknown> = Promise.resolve();
  return <T>(fn: () => Promise<T>): Promise<T> => {
    const next = chain.then(fn);
    chain = next.catch(() => {});
    return next;
  };
}

/**
 * A node on real sockets started from `yaml` (which must have a `docker:` section), with label
 * routes from `engine` applied to it as App does.
 */
export async function startWithContainers(t: TestContext, yaml: string, engine: ContainerEngine) {
  const n = await startNode(t, yaml);
  const { log, lines } = recordingLog();
  const serialize = serialChain();
  const file = n.node.config as SluiceConfig & { docker: DockerConfig };
  const routes = ContainerRoutes.start(file, { clock: systemClock, log, node: n.node, serialize, engine });
  t.after(() => routes.close());
  /** App's reload: parse, then hand the file to the container routes. */
  const reloadFile = (text: string) => serialize(() => routes.reloadFile(config(text)));
  return { ...n, routes, lines, reloadFile };
}
