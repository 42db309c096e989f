/**
 * What the first load of a dashboard page costs: the JavaScript the browser fetches before the
 * page shows, read from the vite build (dist/client/index.html + .vite/manifest.json): the entry
 * script, its module preloads and static imports, then the route's lazy chunk and its static
 * imports. Sizes are gzip (level 9, as the server sends the .gz files) and brotli.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

export interface ManifestChunk {
  file: string;
  src?: string;
  isEntry?: boolean;
  isDynamicEntry?: boolean;
  imports?: string[];
  dynamicImports?: string[];
  css?: string[];
}
export type Manifest = Record<string, ManifestChunk>;

/** Pages of the dashboard by name, as their modules appear in the manifest. */
export const PAGES: Record<string, string> = {
  'Sign in': 'src/pages/Auth.tsx',
  Overview: 'src/pages/Overview.tsx',
  Analytics: 'src/pages/Analytics.tsx',
  'Request log': 'src/pages/Logs.tsx',
  'API keys': 'src/pages/ApiKeys.tsx',
  Billing: 'src/pages/billing/BillingPage.tsx',
  Team: 'src/pages/Team.tsx',
  Account: 'src/pages/Account.tsx',
};

export function readManifest(distDir: string): Manifest {
  return JSON.parse(readFileSync(join(distDir, '.vite/manifest.json'), 'utf8')) as Manifest;
}

/** Script and modulepreload URLs of the built index.html. */
export function indexScripts(distDir: string): string[] {
  const html = readFileSync(join(distDir, 'index.html'), 'utf8');
  const urls = [...html.matchAll(/<script[^>]*\ssrc="([^"]+)"/g), ...html.matchAll(/<link[^>]*rel="modulepreload"[^>]*href="([^"]+)"/g)].map((m) => m[1]!);
  return [...new Set(urls)];
}

/** The files (relative to distDir) a manifest chunk loads before it runs: itself and its static imports, transitively. */
export function staticClosure(manifest: Manifest, key: string, into = new Set<string>()): Set<string> {
  const chunk = manifest[key];
  if (!chunk) throw new Error(`no chunk "${key}" in the manifest`);
  if (into.has(chunk.file)) return into;
  into.add(chunk.file);
  for (const imported of chunk.imports ?? []) staticClosure(manifest, imported, into);
  return into;
}

/** The JavaScript files of the first load of `page` (a manifest key such as src/pages/Auth.tsx). */
export function firstLoadFiles(distDir: string, page: string): string[] {
  const manifest = readManifest(distDir);
  const entryKey = Object.keys(manifest).find((k) => manifest[k]!.isEntry);
  if (!entryKey) throw new Error('the manifest has no entry chunk');
  const files = staticClosure(manifest, entryKey);
  for (const url of indexScripts(distDir)) files.add(url.replace(/^\//, ''));
  staticClosure(manifest, page, files);
  return [...files].filter((f) => f.endsWith('.js')).sort();
}

export interface Sizes {
  raw: number;
  gzip: number;
  brotli: number;
}

export function sizesOf(distDir: string, files: readonly string[]): Sizes {
  const total = { raw: 0, gzip: 0, brotli: 0 };
  // The .gz and .br files the build wrote are what the server sends; small files have none.
  const sizeOf = (path: string, compress: () => Buffer) => (existsSync(path) ? statSync(path).size : compress().length);
  for (const f of files) {
    const path = join(distDir, f);
    const body = readFileSync(path);
    total.raw += body.length;
    total.gzip += sizeOf(`${path}.gz`, () => gzipSync(body, { level: 9 }));
    total.brotli += sizeOf(`${path}.br`, () => brotliCompressSync(body, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }));
  }
  return total;
}

export function firstLoad(distDir: string, page: string): Sizes & { files: string[] } {
  const files = firstLoadFiles(distDir, page);
  return { files, ...sizesOf(distDir, files) };
}
