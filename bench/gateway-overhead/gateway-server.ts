/**
 * Our gateway in its own process: the real buildApp on DATABASE_URL with its OpenAI upstream at
 * UPSTREAM_URL, plus a benchmark organization with credits and an API key. Built to JavaScript and
 * logging as `npm start` does (server/main.ts): the same logger at the default LOG_LEVEL (info),
 * asynchronous, one line per request, written to GATEWAY_LOG_FILE (default /dev/null: stdout
 * carries the READY/STATS lines).
 * Prints `READY <url> <apiKey> <orgId>`. SIGTERM drains the meter and prints `STATS <json>`.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp } from '../../server/app.js';
import { loadConfig } from '../../server/config.js';
import { createProcessLogger } from '../../server/observability/logger.js';
import { runCommand } from '../../server/events/unit-of-work.js';
import { postLedgerEntry } from '../../server/modules/billing/ledger.js';
import { browserClient } from '../../tests/helpers/client.js';

const databaseUrl = process.env.DATABASE_URL!;
const upstream = process.env.UPSTREAM_URL!;
const config = loadConfig({
  NODE_ENV: 'development',
  PORT: '0',
  HOST: '127.0.0.1',
  DATA_DIR: mkdtempSync(join(tmpdir(), 'gateway-bench-data-')),
  APP_SECRET: 'bench-secret-bench-secret-bench-secret-0123',
  OPENAI_API_KEY: 'sk-bench-operator',
  OPENAI_BASE_URL: `${upstream}/v1`,
  // Anthropic too, for the /v1/messages passthrough and /v1/responses translation targets.
  ANTHROPIC_API_KEY: 'sk-bench-operator-anthropic',
  ANTHROPIC_BASE_URL: upstream,
  ...(process.env.GATEWAY_BATCH_WINDOW_MS ? { GATEWAY_BATCH_WINDOW_MS: process.env.GATEWAY_BATCH_WINDOW_MS } : {}),
});
const logger = createProcessLogger(config.logLevel, process.env.GATEWAY_LOG_FILE ?? '/dev/null');
const built = await buildApp({ config, databaseUrl, logger: logger.options, jobs: false });
await built.app.listen({ port: 0, host: '127.0.0.1' });
const address = built.app.server.address();
const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
built.services.appUrl = url;

const browser = browserClient(url);
await browser.client.auth.signUp.mutate({ email: `bench-${Date.now()}@example.com`, password: 'bench password 1', name: 'Bench' });
const { organization, defaultProject } = await browser.client.organization.create.mutate({ name: 'Bench Org' });
await runCommand(built.services, null, (work) => postLedgerEntry(work, organization.id, { type: 'adjustment', amountNanos: 1_000_000_000_000n, description: 'bench credits' }));
const { key } = await browser.client.apiKey.create.mutate({ projectId: defaultProject.id, name: 'bench' });
process.stdout.write(`READY ${url} ${key} ${organization.id}\n`);

process.on('SIGTERM', () => {
  const gateway = built.services.gateway!;
  void built.close().finally(async () => {
    await logger.flush();
    process.stdout.write(`STATS ${JSON.stringify(gateway.meter.stats)}\n`);
    process.exit(0);
  });
});
