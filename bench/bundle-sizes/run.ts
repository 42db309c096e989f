/**
 * Prints the first-load JavaScript of each dashboard page (a Markdown table for bench/README.md).
 * Run after a build: `npx vite build && npx tsx bench/bundle-sizes/run.ts`.
 */
import { resolve } from 'node:path';
import { firstLoad, PAGES } from './measure.js';

const dist = resolve(process.argv[2] ?? 'dist/client');
const kb = (n: number) => `${(n / 1000).toFixed(1)} KB`;
console.log('| Page | JS files | raw | gzip | brotli |');
console.log('| --- | ---: | ---: | ---: | ---: |');
for (const [name, page] of Object.entries(PAGES)) {
  const s = firstLoad(dist, page);
  console.log(`| ${name} | ${s.files.length} | ${kb(s.raw)} | ${kb(s.gzip)} | ${kb(s.brotli)} |`);
}
