/**
 * Gateway overhead: the same local fake upstream called directly, through our gateway (metering
 * on: every call logged, rolled up and charged) and through Portkey's open-source gateway
 * (`@portkey-ai/gateway`, started locally), under the same load from autocannon. Latencies are
 * taken per response from autocannon's `response` events (sub-millisecond precision; its own
 * histogram rounds to whole milliseconds).
 *
 * Knobs: BENCH_RATE (requests/s of the latency runs, 300), BENCH_SECONDS (10), BENCH_CONNECTIONS
 * (throughput runs, 32), DATABASE_URL (else an embedded PostgreSQL in a temp dir), PORTKEY=0 to skip it.
 */
import autocannon from 'autocannon';
import { writeFileSync } from 'node:fs';
import { startDatabase } from '../live-fanout/setup.js';
import { startPortkey, startTsChild, type Child } from './processes.js';

const RATE = Number(process.env.BENCH_RATE ?? 300);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const WITH_PORTKEY = process.env.PORTKEY !== '0';

interface Target {
  name: string;
  url: string;
  headers: Record<string, string>;
  body: string;
}

interface Run {
  p50: number;
  p90: number;
  p99: number;
  mean: number;
  rps: number;
  errors: number;
}

function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

async function load(t: Target, opts: { seconds: number; connections: number; rate?: number }): Promise<Run> {
  const latencies: number[] = [];
  let errors = 0;
  const instance = autocannon({
    url: `${t.url}/v1/chat/completions`,
    method: 'POST',
    headers: { 'content-type': 'application/json', ...t.headers },
    body: t.body,
    connections: opts.connections,
    duration: opts.seconds,
    ...(opts.rate ? { overallRate: opts.rate } : {}),
  });
  (instance as unknown as NodeJS.EventEmitter).on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
    if (status === 200) latencies.push(ms);
    else errors++;
  });
  const result = await instance;
  latencies.sort((a, b) => a - b);
  const mean = latencies.reduce((a, b) => a + b, 0) / Math.max(1, latencies.length);
  return { p50: percentile(latencies, 0.5), p90: percentile(latencies, 0.9), p99: percentile(latencies, 0.99), mean, rps: result.requests.average, errors: errors + result.errors };
}

const round = (n: number, d = 3) => Math.round(n * 10 ** d) / 10 ** d;

const db = await startDatabase();
const children: Child[] = [];
try {
  const upstream = await startTsChild('upstream-server.ts', {}, 'the fake upstream');
  children.push(upstream);
  const gateway = await startTsChild('gateway-server.ts', { DATABASE_URL: db.url, UPSTREAM_URL: upstream.url }, 'our gateway');
  children.push(gateway);
  const [apiKey] = gateway.fields;
  const messages = [{ role: 'user', content: 'Say hello to the benchmark [chunks:20]' }];
  const targets: Target[] = [
    { name: 'direct (fake upstream)', url: upstream.url, headers: { authorization: 'Bearer sk-direct' }, body: JSON.stringify({ model: 'gpt-4o-mini', messages }) },
    { name: 'our gateway (metered)', url: gateway.url, headers: { authorization: `Bearer ${apiKey}` }, body: JSON.stringify({ model: 'openai/gpt-4o-mini', messages }) },
  ];
  if (WITH_PORTKEY) {
    const portkey = await startPortkey(18787 + Math.floor(Math.random() * 1000));
    children.push(portkey);
    targets.push({
      name: 'Portkey gateway',
      url: portkey.url,
      headers: { authorization: 'Bearer sk-portkey', 'x-portkey-provider': 'openai', 'x-portkey-custom-host': `${upstream.url}/v1` },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages }),
    });
  }
  const results: Record<string, { latency: Run; throughput: Run }> = {};
  for (const t of targets) {
    process.stdout.write(`${t.name}: warm-up... `);
    await load(t, { seconds: 3, connections: 8, rate: RATE });
    process.stdout.write(`latency at ${RATE}/s... `);
    const latency = await load(t, { seconds: SECONDS, connections: 8, rate: RATE });
    process.stdout.write(`throughput with ${CONNECTIONS} connections...\n`);
    const throughput = await load(t, { seconds: SECONDS, connections: CONNECTIONS });
    results[t.name] = { latency, throughput };
  }
  const direct = results[targets[0]!.name]!;
  const rows = targets.map((t) => {
    const r = results[t.name]!;
    return {
      target: t.name,
      p50: round(r.latency.p50),
      p99: round(r.latency.p99),
      addedP50: t === targets[0] ? 0 : round(r.latency.p50 - direct.latency.p50),
      addedP99: t === targets[0] ? 0 : round(r.latency.p99 - direct.latency.p99),
      rps: Math.round(r.throughput.rps),
      errors: r.latency.errors + r.throughput.errors,
    };
  });
  console.log(`\n| target | p50 ms | p99 ms | added p50 ms | added p99 ms | max req/s (${CONNECTIONS} conns) | errors |`);
  console.log('|---|---|---|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.target} | ${r.p50} | ${r.p99} | ${r.addedP50} | ${r.addedP99} | ${r.rps} | ${r.errors} |`);
  writeFileSync(new URL('./last-run.json', import.meta.url), JSON.stringify({ at: new Date().toISOString(), rate: RATE, seconds: SECONDS, connections: CONNECTIONS, rows }, null, 2) + '\n');
} finally {
  for (const c of children.reverse()) await c.stop();
  await db.stop();
}
