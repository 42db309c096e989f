/**
 * A second server process for the cross-instance tests: the real app (buildApp) on a free port,
 * on the database given by DATABASE_URL. Prints `READY <url>` once listening; SIGTERM drains it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp } from '../../server/app.js';
import { loadConfig } from '../../server/config.js';

const databaseUrl = process.env.DATABASE_URL;
if (!databaseUrl) throw new Error('DATABASE_URL is required');
const dataDir = mkdtempSync(join(tmpdir(), 'gateway-test-data-'));
const config = loadConfig({
  NODE_ENV: 'test',
  PORT: '0',
  HOST: '127.0.0.1',
  DATA_DIR: dataDir,
  APP_SECRET: 'test-secret-test-secret-test-secret-0123456789',
  // The fake upstreams listen on 127.0.0.1 and tests save provider keys pointing at them.
  GATEWAY_ALLOW_PRIVATE_UPSTREAMS: 'true',
  ...(JSON.parse(process.env.INSTANCE_CONFIG ?? '{}') as Record<string, string>),
});
const built = await buildApp({ config, databaseUrl, logger: process.env.TEST_LOG ? { level: process.env.TEST_LOG } : false, jobs: process.env.INSTANCE_JOBS === '1' });
await built.app.listen({ port: 0, host: '127.0.0.1' });
const address = built.app.server.address();
const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
built.services.appUrl = url;
process.stdout.write(`READY ${url}\n`);

let closing = false;
const shutdown = () => {
  if (closing) return;
  closing = true;
  void built
    .close()
    .catch((err: unknown) => console.error('instance shutdown failed', err))
    .finally(() => {
      rmSync(dataDir, { recursive: true, force: true });
      process.exit(0);
    });
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
// If the test runner dies, do not linger.
process.on('disconnect', shutdown);
