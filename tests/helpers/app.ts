/** Starts the real app (Fastify + tRPC + PostgreSQL) on a free port for a test file. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp, type BuildOptions, type BuiltApp } from '../../server/app.js';
import { loadConfig } from '../../server/config.js';
import { createTestDatabase } from './db.js';

export interface TestApp extends BuiltApp {
  url: string;
  databaseUrl: string;
}

export async function startTestApp(
  opts: { databaseUrl?: string; env?: Record<string, string>; jobs?: boolean; emailRetry?: BuildOptions['emailRetry'] } = {},
): Promise<TestApp> {
  const databaseUrl = opts.databaseUrl ?? (await createTestDatabase());
  const config = loadConfig({
    NODE_ENV: 'test',
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: mkdtempSync(join(tmpdir(), 'gateway-test-data-')),
    APP_SECRET: 'test-secret-test-secret-test-secret-0123456789',
    // The fake upstreams listen on 127.0.0.1 and tests save provider keys pointing at them.
    GATEWAY_ALLOW_PRIVATE_UPSTREAMS: 'true',
    ...opts.env,
  });
  const built = await buildApp({ config, databaseUrl, logger: process.env.TEST_LOG ? { level: process.env.TEST_LOG } : false, jobs: opts.jobs ?? false, emailRetry: opts.emailRetry });
  await built.app.listen({ port: 0, host: '127.0.0.1' });
  const address = built.app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const url = `http://127.0.0.1:${port}`;
  built.services.appUrl = url;
  return { ...built, url, databaseUrl };
}
