/**
 * Analytics at scale: BENCH_LOGS (default 10,000,000) synthetic request logs of one organization
 * over 30 days (5 projects, 20 API keys, 12 models, 2% errors, 20% cache hits, 2.5% of calls retried on
 * another key and half of those fallen back to another model, with their attempts), their hourly rollups
 * built with the meter's rules, then the 30-day analytics.summary / timeseries (hour and day) /
 * breakdown (model, apiKey) through the real service code, next to the same answers computed
 * from the raw logs. Reports median and p95 of each, and checks that both sides agree.
 *
 * Knobs: BENCH_LOGS, BENCH_REPEAT (20), DATABASE_URL (else an embedded PostgreSQL in a temp dir).
 */
import pg from 'pg';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { startDatabase } from '../live-fanout/setup.js';
import { migrate, openDatabase } from '../../server/db/orm.js';
import { usageBreakdown, usageSummary, usageTimeseries } from '../../server/modules/analytics/service.js';
import { LATENCY_BOUNDS_MS, LATENCY_COLUMNS } from '../../server/modules/usage/histogram.js';

const LOGS = Number(process.env.BENCH_LOGS ?? 10_000_000);
const REPEAT = Number(process.env.BENCH_REPEAT ?? 20);
const CHUNK = 1_000_000;
const DAY = 86_400_000;

const db = await startDatabase();
const orm = await openDatabase(db.url);
await migrate(orm);
const client = new pg.Client({ connectionString: db.url });
await client.connect();

async function timed<T>(fn: () => Promise<T>, repeat: number): Promise<{ median: number; p95: number; value: T }> {
  let value = await fn(); // warm-up
  const times: number[] = [];
  for (let i = 0; i < repeat; i++) {
    const t = performance.now();
    value = await fn();
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return { median: times[Math.floor(times.length / 2)]!, p95: times[Math.min(times.length - 1, Math.floor(times.length * 0.95))]!, value };
}

try {
  // One organization with 5 projects and 20 keys (4 per project); each key uses 3 of 12 models.
  const orgId = randomUUID();
  await client.query(`insert into organization (id, name, plan, retention_level, created_at) values ($1, 'Analytics Bench', 'pro', 'none', now())`, [orgId]);
  const projects = Array.from({ length: 5 }, () => randomUUID());
  for (const [i, id] of projects.entries()) await client.query(`insert into project (id, org_id, name, is_default, mode, caching_enabled, cache_ttl_seconds, allowed_origins, created_at) values ($1, $2, $3, $4, 'hybrid', false, 300, '{}', now())`, [id, orgId, `Project ${i + 1}`, i === 0]);
  const keys = Array.from({ length: 20 }, (_, i) => ({ id: randomUUID(), project: projects[i % 5]! }));
  for (const [i, k] of keys.entries()) {
    await client.query(`insert into api_key (id, org_id, project_id, name, prefix, key_hash, created_at) values ($1, $2, $3, $4, $5, $6, now())`, [k.id, orgId, k.project, `key ${i + 1}`, `sk-gw-bench${i}`, Buffer.from(randomUUID())]);
  }
  const models = [
    ['openai', 'gpt-4o-mini'], ['openai', 'gpt-4.1'], ['openai', 'gpt-5-mini'], ['anthropic', 'claude-sonnet-4-5-20250929'],
    ['anthropic', 'claude-haiku-4-5-20251001'], ['google', 'gemini-2.5-flash'], ['google', 'gemini-2.5-pro'], ['alibaba', 'qwen-plus'],
    ['bedrock', 'openai.gpt-oss-120b-1:0'], ['azure', 'gpt-4o'], ['openai', 'o4-mini'], ['alibaba', 'qwen3-max'],
  ];
  console.log(`generating ${LOGS.toLocaleString()} request logs over 30 days...`);
  const t0 = performance.now();
  for (let start = 0; start < LOGS; start += CHUNK) {
    const end = Math.min(LOGS, start + CHUNK);
    await client.query(
      `with k as (select * from unnest($2::uuid[], $3::uuid[]) with ordinality as k(id, project_id, i)),
            m as (select * from unnest($4::text[], $5::text[]) with ordinality as m(provider, model, i))
       insert into request_log (org_id, project_id, api_key_id, provider, model, input_tokens, output_tokens, cached_tokens, cost_nanos, paid_by,
                                latency_ms, ttft_ms, status, error, cached, streamed, canceled, created_at, attempts)
       select $1, k.project_id, k.id, m.provider, m.model, 100 + g % 900, 20 + (g * 7) % 300, case when g % 5 = 0 then 64 else 0 end,
              case when g % 5 = 1 then 0 else ((100 + g % 900) * 150000000::bigint + (20 + (g * 7) % 300) * 600000000::bigint + 500000) / 1000000 end,
              case when g % 50 = 0 then 'none' when g % 5 = 1 then 'cache' else 'credits' end,
              case when g % 5 = 1 then 2 + g % 5 else 150 + (g * 37) % 1800 + case when g % 100 = 0 then 8000 else 0 end end,
              case when g % 2 = 0 then 80 + (g * 13) % 400 end,
              case when g % 50 = 0 then 502 else 200 end, case when g % 50 = 0 then 'upstream failed' end,
              g % 5 = 1, g % 2 = 0, false,
              now() - ((g::double precision / $6) * interval '30 days'),
              -- Several attempts only (the meter stores null for one): a retry on another key, or a fallback from another model.
              case when g % 40 = 3 then jsonb_build_array(
                     jsonb_build_object('provider', m.provider, 'model', case when g % 80 = 3 then m.model else 'fallen-from' end, 'keyName', 'first',
                                        'providerKeyId', null, 'status', 503, 'latencyMs', 40, 'error', 'upstream 503'),
                     jsonb_build_object('provider', m.provider, 'model', m.model, 'keyName', 'second', 'providerKeyId', null, 'status', 200, 'latencyMs', 150, 'error', null)) end
         from generate_series($7::bigint, $8::bigint) g
         join k on k.i = 1 + g % 20
         join m on m.i = 1 + ((k.i - 1) * 3 + (g / 20) % 3) % 12`,
      [orgId, keys.map((k) => k.id), keys.map((k) => k.project), models.map((m) => m[0]), models.map((m) => m[1]), LOGS, start + 1, end],
    );
    process.stdout.write(`  ${end.toLocaleString()} rows (${((performance.now() - t0) / 1000).toFixed(0)} s)\n`);
  }
  // The hourly rollups, with the meter's rules (server/modules/usage/meter.ts).
  const buckets = LATENCY_COLUMNS.map((c, i) => {
    const upper = LATENCY_BOUNDS_MS[i]!;
    const lower = i === 0 ? null : LATENCY_BOUNDS_MS[i - 1]!;
    const cond = [lower === null ? null : `latency_ms > ${lower}`, Number.isFinite(upper) ? `latency_ms <= ${upper}` : null].filter(Boolean).join(' and ');
    return `count(*) filter (where ${cond || 'true'}) as ${c}`;
  });
  await client.query(
    `insert into usage_rollup (org_id, hour, project_id, api_key_id, provider, model, requests, errors, cache_hits, canceled, streamed, input_tokens,
                               output_tokens, cached_tokens, cost_nanos, charged_nanos, latency_sum_ms, ttft_sum_ms, ttft_count, retried, fell_back, ${LATENCY_COLUMNS.join(', ')})
     select org_id, date_trunc('hour', created_at, 'UTC'), project_id, api_key_id, provider, model, count(*), count(*) filter (where status >= 400),
            count(*) filter (where cached), count(*) filter (where canceled), count(*) filter (where streamed), sum(input_tokens), sum(output_tokens),
            sum(cached_tokens), sum(cost_nanos), coalesce(sum(cost_nanos) filter (where paid_by = 'credits'), 0), sum(latency_ms),
            coalesce(sum(ttft_ms), 0), count(ttft_ms), count(*) filter (where jsonb_array_length(attempts) > 1),
            count(*) filter (where jsonb_array_length(attempts) > 1 and (attempts->0->>'provider' <> attempts->-1->>'provider' or attempts->0->>'model' <> attempts->-1->>'model')),
            ${buckets.join(', ')}
       from request_log where org_id = $1 group by 1, 2, 3, 4, 5, 6`,
    [orgId],
  );
  const sums = ['requests', 'errors', 'cache_hits', 'canceled', 'streamed', 'input_tokens', 'output_tokens', 'cached_tokens', 'cost_nanos', 'charged_nanos', 'latency_sum_ms', 'ttft_sum_ms', 'ttft_count', 'retried', 'fell_back', ...LATENCY_COLUMNS];
  await client.query(
    `insert into usage_rollup_project (org_id, hour, project_id, ${sums.join(', ')})
     select org_id, hour, project_id, ${sums.map((c) => `sum(${c})`).join(', ')} from usage_rollup where org_id = $1 group by 1, 2, 3`,
    [orgId],
  );
  await client.query('vacuum analyze usage_rollup_project');
  await client.query('vacuum analyze request_log');
  await client.query('vacuum analyze usage_rollup');
  const rollupRows = Number((await client.query('select count(*) from usage_rollup where org_id = $1', [orgId])).rows[0].count);
  console.log(`${LOGS.toLocaleString()} logs and ${rollupRows.toLocaleString()} rollup rows ready in ${((performance.now() - t0) / 1000).toFixed(0)} s\n`);

  const to = new Date(Date.now() + 3_600_000);
  const from = new Date(to.getTime() - 30 * DAY);
  const range = { orgId, from, to };
  const em = () => orm.em.fork();
  const raw = (sql: string) => () => client.query(sql, [orgId, from.toISOString(), to.toISOString()]).then((r) => r.rows);
  const where = `org_id = $1 and created_at >= date_trunc('hour', $2::timestamptz, 'UTC') and created_at < $3::timestamptz`;
  const cases: [string, () => Promise<unknown>, () => Promise<unknown>][] = [
    [
      'summary (30 days)',
      () => usageSummary(em(), range),
      raw(`select count(*), count(*) filter (where status >= 400), count(*) filter (where cached), sum(input_tokens), sum(output_tokens), sum(cost_nanos),
                  percentile_cont(0.5) within group (order by latency_ms), percentile_cont(0.95) within group (order by latency_ms) from request_log where ${where}`),
    ],
    [
      'timeseries, hourly (720 points)',
      () => usageTimeseries(em(), { ...range, bucket: 'hour' }),
      raw(`select date_trunc('hour', created_at, 'UTC'), count(*), count(*) filter (where status >= 400), count(*) filter (where cached), sum(input_tokens), sum(output_tokens), sum(cost_nanos),
                  percentile_cont(0.5) within group (order by latency_ms), percentile_cont(0.95) within group (order by latency_ms) from request_log where ${where} group by 1`),
    ],
    [
      'timeseries, daily',
      () => usageTimeseries(em(), { ...range, bucket: 'day' }),
      raw(`select date_trunc('day', created_at, 'UTC'), count(*), count(*) filter (where status >= 400), count(*) filter (where cached), sum(input_tokens), sum(output_tokens), sum(cost_nanos),
                  percentile_cont(0.5) within group (order by latency_ms), percentile_cont(0.95) within group (order by latency_ms) from request_log where ${where} group by 1`),
    ],
    [
      'breakdown by model',
      () => usageBreakdown(em(), { ...range, by: 'model' }),
      raw(`select provider, model, count(*), sum(input_tokens), sum(output_tokens), sum(cost_nanos), count(*) filter (where status >= 400), count(*) filter (where cached)
             from request_log where ${where} group by 1, 2`),
    ],
    [
      'breakdown by API key',
      () => usageBreakdown(em(), { ...range, by: 'apiKey' }),
      raw(`select api_key_id, count(*), sum(input_tokens), sum(output_tokens), sum(cost_nanos), count(*) filter (where status >= 400), count(*) filter (where cached)
             from request_log where ${where} group by 1`),
    ],
  ];
  const rows: { query: string; rollupMedian: number; rollupP95: number; rawMedian: number }[] = [];
  for (const [name, fromRollups, fromLogs] of cases) {
    const a = await timed(fromRollups, REPEAT);
    const b = await timed(fromLogs, 2);
    rows.push({ query: name, rollupMedian: a.median, rollupP95: a.p95, rawMedian: b.median });
    process.stdout.write(`  ${name}: rollups ${a.median.toFixed(1)} ms, raw logs ${b.median.toFixed(0)} ms\n`);
  }
  // Both sides agree (the raw side counts exactly; latency percentiles are histogram estimates).
  const summary = await usageSummary(em(), range);
  const [exact] = await raw(`select count(*)::int as requests, sum(output_tokens)::bigint as output, sum(cost_nanos)::bigint as cost,
                                    count(*) filter (where attempts is not null)::int as retried,
                                    percentile_cont(0.5) within group (order by latency_ms) as p50, percentile_cont(0.95) within group (order by latency_ms) as p95
                               from request_log where ${where}`)() as { requests: number; output: string; cost: string; retried: number; p50: number; p95: number }[];
  const agree = summary.requests === exact!.requests && summary.outputTokens === Number(exact!.output) && summary.retried === exact!.retried;
  console.log(`\nrequests ${summary.requests} (raw ${exact!.requests}), retried ${summary.retried} (raw ${exact!.retried}), cost ${summary.cost}; p50 ${summary.latencyP50Ms} ms (exact ${exact!.p50}), p95 ${summary.latencyP95Ms} ms (exact ${exact!.p95})`);
  console.log(`\n| query (${LOGS.toLocaleString()} logs, 30 days) | from rollups: median | p95 | from raw logs: median |`);
  console.log('|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.query} | ${r.rollupMedian.toFixed(1)} ms | ${r.rollupP95.toFixed(1)} ms | ${r.rawMedian.toFixed(0)} ms |`);
  writeFileSync(
    new URL('./last-run.json', import.meta.url),
    JSON.stringify({ at: new Date().toISOString(), logs: LOGS, rollupRows, rows, agree, p50: { histogram: summary.latencyP50Ms, exact: exact!.p50 }, p95: { histogram: summary.latencyP95Ms, exact: exact!.p95 } }, null, 2) + '\n',
  );
  if (!agree) {
    console.log('FAIL: rollups and raw logs disagree');
    process.exitCode = 1;
  }
} finally {
  await client.end();
  await orm.close();
  await db.stop();
}
