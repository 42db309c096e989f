import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { defineConfig, type Plugin } from 'vite';
import solid from 'vite-plugin-solid';

/**
 * Writes `name.br` and `name.gz` next to every text file of the build, once, at build time:
 * the server (@fastify/static with `preCompressed`) sends them to browsers that accept them,
 * so no request pays for compression.
 */
function precompress(): Plugin {
  return {
    name: 'precompress',
    apply: 'build',
    async writeBundle(options, bundle) {
      const outDir = options.dir!;
      for (const fileName of Object.keys(bundle)) {
        if (!/\.(js|css|html|svg|json)$/.test(fileName)) continue;
        const path = join(outDir, fileName);
        const body = await readFile(path);
        if (body.length < 512) continue;
        await writeFile(`${path}.br`, brotliCompressSync(body, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: body.length } }));
        await writeFile(`${path}.gz`, gzipSync(body, { level: 9 }));
      }
    },
  };
}

export default defineConfig({
  root: 'client',
  plugins: [solid(), precompress()],
  build: {
    outDir: '../dist/client',
    emptyOutDir: true,
    // No source maps in production: they would publish the source and double what a deploy ships.
    sourcemap: false,
    // dist/client/.vite/manifest.json: which chunks each page loads (the first-load budget test reads it).
    manifest: true,
  },
  server: {
    port: 5173,
    proxy: { '/trpc': { target: 'http://localhost:3000', ws: true }, '/healthz': 'http://localhost:3000' },
  },
});
