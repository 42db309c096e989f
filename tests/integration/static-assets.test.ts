/**
 * The built dashboard as the server sends it: hashed assets compressed (brotli or gzip, from the
 * .br/.gz files the build writes) and cached for a year as immutable, index.html (and the SPA
 * fallback) revalidated on every load, no source maps; and the first load of sign-in and of the
 * overview within 100 KB of gzipped JavaScript, uPlot only on pages with charts, one copy of zod.
 *
 * Reads dist/client: `npm test` builds it first (vite build), as for the browser tests.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join, resolve } from 'node:path';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { firstLoad, indexScripts, readManifest } from '../../bench/bundle-sizes/measure.js';
import { startTestApp, type TestApp } from '../helpers/app.js';

const DIST = resolve('dist/client');
const BUDGET_GZIP_BYTES = 100 * 1000;
const IMMUTABLE = 'public, max-age=31536000, immutable';

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** A GET with exactly these headers (fetch would add its own Accept-Encoding and decode the body). */
function get(url: string, headers: Record<string, string> = {}): Promise<RawResponse> {
  return new Promise((done, fail) => {
    const req = request(url, { method: 'GET', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => done({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', fail);
    });
    req.on('error', fail);
    req.end();
  });
}

function assetFiles(): string[] {
  return readdirSync(join(DIST, 'assets'));
}

describe('the built client', () => {
  it('exists (run vite build first)', () => {
    expect(existsSync(join(DIST, 'index.html')), 'dist/client/index.html is missing: run `npx vite build`').toBe(true);
    expect(existsSync(join(DIST, '.vite/manifest.json')), 'the build writes its manifest (vite.config.ts build.manifest)').toBe(true);
  });

  it('has no source maps and no source map references', () => {
    const files = assetFiles();
    expect(files.filter((f) => f.endsWith('.map'))).toEqual([]);
    for (const f of files.filter((f) => f.endsWith('.js') || f.endsWith('.css'))) {
      expect(readFileSync(join(DIST, 'assets', f), 'utf8'), f).not.toMatch(/sourceMappingURL=/);
    }
  });

  it('has a brotli and a gzip copy of every script and stylesheet, with the same content', () => {
    const files = assetFiles().filter((f) => /\.(js|css)$/.test(f));
    expect(files.length).toBeGreaterThan(3);
    for (const f of files) {
      const body = readFileSync(join(DIST, 'assets', f));
      if (body.length < 512) continue;
      expect(brotliDecompressSync(readFileSync(join(DIST, 'assets', `${f}.br`))).equals(body), `${f}.br`).toBe(true);
      expect(gunzipSync(readFileSync(join(DIST, 'assets', `${f}.gz`))).equals(body), `${f}.gz`).toBe(true);
    }
  });
});

describe('first-load JavaScript budget', () => {
  const pages = { 'sign-in': 'src/pages/Auth.tsx', overview: 'src/pages/Overview.tsx' } as const;

  it.each(Object.entries(pages))('the first load of %s is at most 100 KB gzipped', (name, page) => {
    const load = firstLoad(DIST, page);
    // The entry script, the page's chunk and what they import; not the other pages.
    expect(load.files.some((f) => f.includes('/index-'))).toBe(true);
    expect(load.files.some((f) => f.startsWith(`assets/${page.split('/').pop()!.replace('.tsx', '')}-`))).toBe(true);
    expect(load.files.some((f) => /\/(Billing|Team|Account|Settings)Page?-/.test(f))).toBe(false);
    expect(load.gzip, `${name}: ${load.files.join(', ')}`).toBeLessThanOrEqual(BUDGET_GZIP_BYTES);
  });

  it('loads the route chunks lazily: index.html names the entry only', () => {
    const scripts = indexScripts(DIST);
    const manifest = readManifest(DIST);
    const entry = Object.values(manifest).find((c) => c.isEntry)!;
    expect(scripts).toContain(`/${entry.file}`);
    expect(entry.dynamicImports?.length ?? 0).toBeGreaterThan(5);
    for (const page of Object.values(pages)) expect(manifest[page]?.isDynamicEntry, page).toBe(true);
  });

  it('ships uPlot only with the charts, and one copy of the schema library', () => {
    const js = assetFiles().filter((f) => f.endsWith('.js'));
    const containing = (marker: string) => js.filter((f) => readFileSync(join(DIST, 'assets', f), 'utf8').includes(marker)).map((f) => `assets/${f}`);
    const uplot = containing('u-legend');
    expect(uplot).toHaveLength(1);
    expect(firstLoad(DIST, pages['sign-in']).files).not.toContain(uplot[0]);
    expect(firstLoad(DIST, 'src/pages/Analytics.tsx').files).toContain(uplot[0]);
    expect(containing('$ZodType').length).toBeLessThanOrEqual(1);
  });
});

describe('static assets over HTTP', () => {
  let app: TestApp;
  let entry: string;
  let stylesheet: string;
  beforeAll(async () => {
    app = await startTestApp();
    const manifest = readManifest(DIST);
    const main = Object.values(manifest).find((c) => c.isEntry)!;
    entry = `/${main.file}`;
    stylesheet = `/${main.css![0]!}`;
  });
  afterAll(async () => {
    await app?.close();
  });

  it('sends hashed assets brotli-compressed when accepted, cached for a year as immutable', async () => {
    const plain = readFileSync(join(DIST, entry));
    const res = await get(`${app.url}${entry}`, { 'accept-encoding': 'gzip, deflate, br' });
    expect(res.status).toBe(200);
    expect(res.headers['content-encoding']).toBe('br');
    expect(res.headers['content-type']).toMatch(/javascript/);
    expect(res.headers['cache-control']).toBe(IMMUTABLE);
    expect(res.headers.vary).toMatch(/accept-encoding/i);
    expect(brotliDecompressSync(res.body).equals(plain)).toBe(true);
    expect(res.body.length).toBeLessThan(plain.length / 2);
  });

  it('falls back to gzip, then to the plain file', async () => {
    const plain = readFileSync(join(DIST, stylesheet));
    const gz = await get(`${app.url}${stylesheet}`, { 'accept-encoding': 'gzip' });
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(gz.headers['content-type']).toMatch(/text\/css/);
    expect(gz.headers['cache-control']).toBe(IMMUTABLE);
    expect(gunzipSync(gz.body).equals(plain)).toBe(true);
    const identity = await get(`${app.url}${stylesheet}`);
    expect(identity.headers['content-encoding']).toBeUndefined();
    expect(identity.body.equals(plain)).toBe(true);
    expect(identity.headers['cache-control']).toBe(IMMUTABLE);
  });

  it('revalidates index.html on every load, at / and as the SPA fallback', async () => {
    for (const path of ['/', '/index.html', '/org/00000000-0000-0000-0000-000000000000/overview', '/signin']) {
      const res = await get(`${app.url}${path}`, { 'accept-encoding': 'gzip, br' });
      expect(res.status, path).toBe(200);
      expect(res.headers['content-type'], path).toMatch(/text\/html/);
      expect(res.headers['cache-control'], path).toBe('no-cache');
    }
  });

  it('answers a missing asset with 404, not the page', async () => {
    const res = await get(`${app.url}/assets/gone-0000.js`);
    expect(res.status).toBe(404);
    expect(res.headers['content-type']).not.toMatch(/text\/html/);
  });

  it('serves no source maps', async () => {
    const res = await get(`${app.url}${entry}.map`);
    expect(res.status).toBe(404);
  });
});
