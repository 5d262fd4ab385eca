import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { packagedAsset } from '../core/packaged.js';

export interface StaticFile {
  readonly type: string;
  readonly body: Buffer;
}

/** The dashboard's files: plain HTML, CSS and one script, no build step (src/admin/dashboard/). */
const FILES: Record<string, string> = {
  '/': 'index.html',
  '/login': 'login.html',
  '/dashboard.js': 'dashboard.js',
  '/dashboard.css': 'dashboard.css',
};
const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
};

/**
 * Reads the dashboard; the admin server does this once when it starts and keeps the files in
 * memory (about 20 KB). They sit in the source tree, which the compiled code finds at
 * `../../../src/admin/dashboard/` (from dist/src/admin/) or `./dashboard/` (run from source);
 * a single executable carries them as `dashboard/NAME` assets. Empty when none of these exists:
 * the API still works, the dashboard answers 404.
 */
export function dashboardFiles(): Map<string, StaticFile> {
  const packaged = Object.entries(FILES).map(([path, name]) => [path, name, packagedAsset(`dashboard/${name}`)] as const);
  if (packaged.every(([, , body]) => body !== undefined)) {
    return new Map(packaged.map(([path, name, body]) => [path, { type: TYPES[name.split('.').pop()!]!, body: body! }]));
  }
  const candidates = [new URL('../../../src/admin/dashboard/', import.meta.url), new URL('./dashboard/', import.meta.url)];
  const dir = candidates.find((u) => existsSync(fileURLToPath(new URL('index.html', u))));
  const files = new Map<string, StaticFile>();
  if (dir) {
    for (const [path, name] of Object.entries(FILES)) {
      files.set(path, { type: TYPES[name.split('.').pop()!]!, body: readFileSync(new URL(name, dir)) });
    }
  }
  return files;
}
