/**
 * Our gateway in its own process: the real buildApp on DATABASE_URL with its OpenAI upstream at
 * UPSTREAM_URL, plus a benchmark organization with credits and an API key. Built to JavaScript and
 * logging as `npm start` does (server/main.ts): the same logger at the default LOG_LEVEL (info),
 * asynchronous, one line per request, written to GATEWAY_LOG_FILE (default /dev/null: stdout
 * carries the READY/STATS lines).
 * GATEWAY_WEBHOOK_URL: also a webhook endpoint of the organization, subscribed to `usage` events, at
 * that URL (a local receiver: private addresses are allowed then).
 * GATEWAY_PROFILE_DIR: SIGUSR2 starts a CPU profile of this process (the overhead bench sends it
 * after the warm-up), written to that directory at SIGTERM (`gateway-<time>.cpuprofile`).
 * Prints `READY <url> <apiKey> <orgId> [<webhookId> <webhookSecret>]`. SIGTERM drains the meter and prints `STATS <json>`.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
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
  ...(process.env.GATEWAY_WEBHOOK_URL ? { GATEWAY_ALLOW_PRIVATE_UPSTREAMS: 'true' } : {}),
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
let webhook = '';
if (process.env.GATEWAY_WEBHOOK_URL) {
  const made = await browser.client.webhook.create.mutate({ orgId: organization.id, url: process.env.GATEWAY_WEBHOOK_URL, events: ['usage'] });
  webhook = ` ${made.webhook.id} ${made.secret}`;
  // npm start's job runner starts the dispatcher (server/jobs/boss.ts); this process runs without
  // jobs (no pg-boss polling), so it starts only that: deliveries go out at commit, no retries.
  await built.services.webhooks.start();
}
process.stdout.write(`READY ${url} ${key} ${organization.id}${webhook}\n`);

const profileDir = process.env.GATEWAY_PROFILE_DIR;
let profiling: Promise<Session> | null = null;
if (profileDir) {
  process.on('SIGUSR2', () => {
    profiling ??= (async () => {
      const session = new Session();
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.setSamplingInterval', { interval: Number(process.env.GATEWAY_PROFILE_INTERVAL_US ?? 1000) }); // µs; 1000 is --cpu-prof's default
      await session.post('Profiler.start');
      return session;
    })();
  });
}

process.on('SIGTERM', () => {
  const gateway = built.services.gateway!;
  void (async () => {
    if (!profiling || !profileDir) return;
    const { profile } = await (await profiling).post('Profiler.stop');
    mkdirSync(profileDir, { recursive: true });
    writeFileSync(join(profileDir, `gateway-${Date.now()}.cpuprofile`), JSON.stringify(profile));
  })()
    .then(() => built.close())
    .finally(async () => {
      await logger.flush();
      process.stdout.write(`STATS ${JSON.stringify(gateway.meter.stats)}\n`);
      process.exit(0);
    });
});
