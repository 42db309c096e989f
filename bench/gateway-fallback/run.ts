/**
 * What a fallback costs (issue #11): with the primary provider refusing connections (its base URL a
 * closed local port), a call naming it first (`model: google/gemini-2.5-flash`, `models:
 * ["azure/gpt-4o-mini"]`) against a direct call to the second provider (`model: azure/gpt-4o-mini`),
 * through the same gateway (the real buildApp, metering on) and the same fake upstream (its own
 * process: bench/gateway-overhead/upstream-server.ts), in interleaved rounds on one keep-alive
 * connection, calls back to back. Beside them, a bare refused TCP connection attempt to the closed
 * port (what "one extra connection attempt" costs on this machine). Target: the fallback call's
 * median is at most the direct call's median + one refused connection attempt + 1 ms.
 *
 * The circuit breaker is kept closed here (it would soon stop trying the refusing provider at all,
 * making the fallback free): every fallback call pays the refused attempt, the worst case.
 *
 * Knobs: CALLS (per target per round, 300), ROUNDS (6), WARMUP_CALLS (2000), DATABASE_URL (else an
 * embedded PostgreSQL). Prints a JSON summary (ms) and writes it to bench/gateway-fallback/last-run.json.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'undici';
import { startDatabase } from '../live-fanout/setup.js';
import { startTsChild } from '../gateway-overhead/processes.js';
import { buildApp } from '../../server/app.js';
import { loadConfig } from '../../server/config.js';
import { runCommand } from '../../server/events/unit-of-work.js';
import { postLedgerEntry } from '../../server/modules/billing/ledger.js';
import { browserClient } from '../../tests/helpers/client.js';
import type { SharedProviderHealth } from '../../server/modules/gateway/health.js';

const CALLS = Number(process.env.CALLS ?? 300);
const ROUNDS = Number(process.env.ROUNDS ?? 6);
const WARMUP_CALLS = Number(process.env.WARMUP_CALLS ?? 2000);
const nowMs = () => Number(process.hrtime.bigint()) / 1e6;
const percentile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};
const round = (n: number) => Math.round(n * 1000) / 1000;

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** One refused TCP connection attempt to the closed port (ms). */
function refusedConnect(port: number): Promise<number> {
  const start = nowMs();
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => reject(new Error('the closed port accepted a connection')));
    socket.once('error', () => resolve(nowMs() - start));
  });
}

const db = await startDatabase();
const upstream = await startTsChild('upstream-server.ts', {}, 'fake upstream');
const port = await closedPort();
const config = loadConfig({
  NODE_ENV: 'development',
  PORT: '0',
  HOST: '127.0.0.1',
  LOG_LEVEL: 'warn',
  DATA_DIR: mkdtempSync(join(tmpdir(), 'gateway-fallback-data-')),
  APP_SECRET: 'bench-secret-bench-secret-bench-secret-0123',
  GEMINI_API_KEY: 'bench-operator-gemini',
  GEMINI_BASE_URL: `http://127.0.0.1:${port}/v1`,
  AZURE_OPENAI_API_KEY: 'bench-operator-azure',
  AZURE_OPENAI_BASE_URL: upstream.url,
});
const built = await buildApp({ config, databaseUrl: db.url, logger: false, jobs: false });
await built.app.listen({ port: 0, host: '127.0.0.1' });
const address = built.app.server.address();
const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
built.services.appUrl = url;
(built.services.gateway!.health as SharedProviderHealth).settings.minCalls = Number.MAX_SAFE_INTEGER;

const browser = browserClient(url);
await browser.client.auth.signUp.mutate({ email: `bench-${Date.now()}@example.com`, password: 'bench password 1', name: 'Bench' });
const { organization, defaultProject } = await browser.client.organization.create.mutate({ name: 'Bench Org' });
await runCommand(built.services, null, (work) => postLedgerEntry(work, organization.id, { type: 'adjustment', amountNanos: 1_000_000_000_000n, description: 'bench credits' }));
const { key } = await browser.client.apiKey.create.mutate({ projectId: defaultProject.id, name: 'bench' });

const client = new Client(url, { pipelining: 1, keepAliveTimeout: 30_000 });
const bodies = {
  /** The primary alone, no fallback: the refused attempt and its 502 (what the fallback adds on top of the direct call). */
  refused: (i: number) => JSON.stringify({ model: 'google/gemini-2.5-flash', messages: [{ role: 'user', content: `hello ${i}` }] }),
  direct: (i: number) => JSON.stringify({ model: 'azure/gpt-4o-mini', messages: [{ role: 'user', content: `hello ${i}` }] }),
  fallback: (i: number) => JSON.stringify({ model: 'google/gemini-2.5-flash', models: ['azure/gpt-4o-mini'], messages: [{ role: 'user', content: `hello ${i}` }] }),
};
async function call(kind: keyof typeof bodies, i: number): Promise<number> {
  const start = nowMs();
  const res = await client.request({ path: '/v1/chat/completions', method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: bodies[kind](i) });
  await res.body.text();
  const ms = nowMs() - start;
  if (res.statusCode !== (kind === 'refused' ? 502 : 200)) throw new Error(`${kind} call answered ${res.statusCode}`);
  const attempts = res.headers['x-gateway-attempts'];
  if (attempts !== (kind === 'fallback' ? '2' : '1')) throw new Error(`${kind} call made ${String(attempts)} attempts`);
  return ms;
}

for (let i = 0; i < WARMUP_CALLS; i++) await call(i % 2 ? 'direct' : 'fallback', i);
const samples = { direct: [] as number[], fallback: [] as number[], refused: [] as number[], refusedConnect: [] as number[] };
for (let r = 0; r < ROUNDS; r++) {
  for (const kind of r % 2 ? (['fallback', 'refused', 'direct'] as const) : (['direct', 'refused', 'fallback'] as const)) {
    for (let i = 0; i < CALLS; i++) samples[kind].push(await call(kind, i));
  }
  for (let i = 0; i < CALLS; i++) samples.refusedConnect.push(await refusedConnect(port));
}
await client.close();

const p50 = { direct: percentile(samples.direct, 0.5), fallback: percentile(samples.fallback, 0.5), refused: percentile(samples.refused, 0.5), refusedConnect: percentile(samples.refusedConnect, 0.5) };
const extra = p50.fallback - p50.direct;
// On a loaded machine the medians carry scheduling stalls (a fallback call has two upstream round
// trips, so twice the chances): the quartile is shown too.
const p25 = { direct: percentile(samples.direct, 0.25), fallback: percentile(samples.fallback, 0.25), refusedConnect: percentile(samples.refusedConnect, 0.25) };
const summary = {
  at: new Date().toISOString(),
  calls: { perTarget: CALLS * ROUNDS, rounds: ROUNDS },
  loadavg: loadavg().map(round),
  p50Ms: { direct: round(p50.direct), fallback: round(p50.fallback), refusedOnly: round(p50.refused), refusedConnect: round(p50.refusedConnect) },
  p99Ms: { direct: round(percentile(samples.direct, 0.99)), fallback: round(percentile(samples.fallback, 0.99)), refusedConnect: round(percentile(samples.refusedConnect, 0.99)) },
  p25Ms: { direct: round(p25.direct), fallback: round(p25.fallback), refusedOnly: round(percentile(samples.refused, 0.25)), refusedConnect: round(p25.refusedConnect) },
  fallbackExtraP25Ms: round(p25.fallback - p25.direct),
  fallbackExtraP50Ms: round(extra),
  /** The fallback's extra beyond one refused connection attempt: the gateway's own work for the second attempt (target: at most 1 ms). */
  beyondConnectAttemptP50Ms: round(extra - p50.refusedConnect),
  withinTarget: extra <= p50.refusedConnect + 1,
};
console.log(JSON.stringify(summary, null, 2));
writeFileSync(new URL('./last-run.json', import.meta.url), `${JSON.stringify(summary, null, 2)}\n`);

await built.close();
await upstream.stop();
await db.stop();
process.exit(summary.withinTarget ? 0 : 1);
