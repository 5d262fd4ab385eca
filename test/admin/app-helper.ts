import http from 'node:http';
import https from 'node:https';
import { Writable } from 'node:stream';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { startNode as startRunningNode } from '../../src/root/start-node.js';
import { systemClock, type Clock } from '../../src/core/clock.js';
import { formatHostPort } from '../../src/core/address.js';
import { config } from '../helpers/node.js';

/** Apps of each test, stopped before its temp dirs are removed (they flush files into them on stop). */
const appsOf = new WeakMap<TestContext, (() => Promise<void>)[]>();

/**
 * A fresh directory under the OS temp dir, removed when the test ends (unless KEEP_TMP=1), after
 * the test's apps have stopped: t.after hooks run in the order they were added.
 */
export async function tempDir(t: TestContext, prefix = 'sluice-admin-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.after(async () => {
    for (const stop of appsOf.get(t) ?? []) await stop();
    if (process.env.KEEP_TMP !== '1') await rm(dir, { recursive: true, force: true });
  });
  return dir;
}

/**
 * Starts a whole running node (root/start-node.ts: routes, every sink, admin listener) from YAML, on real
 * sockets, with the process log captured in `logs`. Stopped in t.after. With `file`, the YAML is
 * written there first and the node reloads from it (`app.reload()`).
 */
export async function startApp(t: TestContext, yaml: string, opts: { file?: string; clock?: Clock } = {}) {
  let logs = '';
  const logDestination = new Writable({
    write(chunk, _enc, cb) {
      logs += String(chunk);
      cb();
    },
  });
  if (opts.file) await writeFile(opts.file, yaml);
  const app = await startRunningNode(config(yaml), { configPath: opts.file, clock: opts.clock ?? systemClock, logDestination });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await app.stop();
  };
  t.after(stop);
  appsOf.set(t, [...(appsOf.get(t) ?? []), stop]);
  const admin = () => {
    const a = app.ops.adminAddress;
    if (!a) throw new Error('no admin listener');
    return `${app.ops.adminTls ? 'https' : 'http'}://${formatHostPort(a.address, a.port)}`;
  };
  return { app, admin, logs: () => logs, stop, port: (route: string) => app.routes.route(route)!.local.port };
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/**
 * One HTTP(S) request with exactly the headers given (fetch would not let a test set Host), the
 * body read to the end. `localAddress`: the source address (another loopback address is another
 * client); `ca`: the certificate an https:// URL must chain to.
 */
export function request(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string; localAddress?: string; ca?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const o = { method: opts.method ?? 'GET', headers: opts.headers, agent: false as const, localAddress: opts.localAddress, ...(opts.ca ? { ca: opts.ca } : {}) };
    const req = (url.startsWith('https:') ? https : http).request(url, o, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

export async function getJson<T = Record<string, unknown>>(url: string, headers: Record<string, string> = {}): Promise<T> {
  const r = await request(url, { headers });
  if (r.status !== 200) throw new Error(`${url}: HTTP ${r.status} ${r.body}`);
  return JSON.parse(r.body) as T;
}

/**
 * Reads a server-sent event stream until `until` accepts a `tick` message (or `timeoutMs`
 * passes); returns every tick seen. Closes the connection afterwards.
 */
export function readTicks<T>(url: string, until: (tick: T, all: T[]) => boolean, headers: Record<string, string> = {}, timeoutMs = 8000): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const ticks: T[] = [];
    const req = http.get(url, { headers, agent: false }, (res) => {
      if (res.statusCode !== 200) {
        reject(new Error(`stream: HTTP ${res.statusCode}`));
        res.resume();
        return;
      }
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        let end: number;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const msg = buf.slice(0, end);
          buf = buf.slice(end + 2);
          const event = /^event: (.*)$/m.exec(msg)?.[1];
          const data = /^data: (.*)$/m.exec(msg)?.[1];
          if (event !== 'tick' || data === undefined) continue;
          const tick = JSON.parse(data) as T;
          ticks.push(tick);
          if (until(tick, ticks)) {
            clearTimeout(timer);
            req.destroy();
            resolve(ticks);
            return;
          }
        }
      });
    });
    req.on('error', (err) => {
      if (!req.destroyed) reject(err);
    });
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`stream: no matching tick within ${timeoutMs} ms (${ticks.length} seen)`));
    }, timeoutMs);
  });
}
