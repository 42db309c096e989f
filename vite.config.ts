import { defineConfig } from 'vite';
import solid from 'vite-plugin-solid';

export default defineConfig({
  root: 'client',
  plugins: [solid()],
  build: { outDir: '../dist/client', emptyOutDir: true, sourcemap: true },
  server: {
    port: 5173,
    proxy: { '/trpc': { target: 'http://localhost:3000', ws: true }, '/healthz': 'http://localhost:3000' },
  },
});
