/**
 * Metered throughput: our gateway (one process, the real buildApp) in front of the local fake
 * upstream, loaded by autocannon at full speed; every call logged, rolled up and charged by group
 * commit. Afterwards the gateway is stopped with SIGTERM (its meter drains) and the accounting is
 * checked exactly: logs == 2xx answers, sum of log costs == usage ledger == balance change,
 * rollups == logs. Exits 1 when the accounting disagrees.
 *
 * Knobs: BENCH_SECONDS (15), BENCH_CONNECTIONS (64), DATABASE_URL (else embedded PostgreSQL).
 */
import autocannon from 'autocannon';
import pg from 'pg';
import { writeFileSync } from 'node:fs';
import { startDatabase } from '../live-fanout/setup.js';
import { startTsChild, type Child } from '../gateway-overhead/processes.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 15);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 64);

const db = await startDatabase();
const children: Child[] = [];
let ok: boolean;
try {
  const upstream = await startTsChild('upstream-server.ts', {}, 'the fake upstream');
  children.push(upstream);
  const gateway = await startTsChild('gateway-server.ts', { DATABASE_URL: db.url, UPSTREAM_URL: upstream.url }, 'our gateway');
  children.push(gateway);
  const [apiKey, orgId] = gateway.fields;
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  const balanceBefore = BigInt((await client.query('select credits_nanos from organization where id = $1', [orgId])).rows[0].credits_nanos);

  const result = await autocannon({
    url: `${gateway.url}/v1/chat/completions`,
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
    body: JSON.stringify({ model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'meter me [chunks:20]' }] }),
    connections: CONNECTIONS,
    duration: SECONDS,
  });
  await gateway.stop(); // SIGTERM: the meter drains before the process exits
  children.splice(children.indexOf(gateway), 1);

  const ok2xx = result['2xx'];
  const q = async (sql: string) => (await client.query(sql, [orgId])).rows[0];
  const logs = await q(`select count(*)::bigint as n, count(*) filter (where status = 200)::bigint as ok, count(*) filter (where paid_by = 'credits' and cost_nanos > 0)::bigint as charged, coalesce(sum(cost_nanos), 0)::text as cost from request_log where org_id = $1`);
  const ledger = await q(`select coalesce(-sum(amount_nanos), 0)::text as total, coalesce(sum(request_count), 0)::bigint as requests, count(*)::bigint as entries from credit_ledger where org_id = $1 and type = 'usage'`);
  const rollups = await q(`select coalesce(sum(requests), 0)::bigint as n, coalesce(sum(cost_nanos), 0)::text as cost from usage_rollup where org_id = $1`);
  const balanceAfter = BigInt((await q('select credits_nanos from organization where id = $1')).credits_nanos);
  await client.end();

  const checks = {
    // Calls still in flight when autocannon stops are answered after it stopped counting (at most one per connection).
    'logs of 200 answers == 2xx seen by the client (+ in flight at the end)': Number(logs.ok) >= ok2xx && Number(logs.ok) <= ok2xx + CONNECTIONS,
    'sum of log costs == usage ledger': BigInt(logs.cost) === BigInt(ledger.total),
    'usage ledger == balance change': BigInt(ledger.total) === balanceBefore - balanceAfter,
    'ledger request counts == charged logs': Number(ledger.requests) === Number(logs.charged),
    'rollups == logs': Number(rollups.n) === Number(logs.n) && rollups.cost === logs.cost,
  };
  ok = Object.values(checks).every(Boolean);
  const metered = Math.round(Number(logs.n) / SECONDS);
  console.log(`\nmetered requests/s: ${metered} (${logs.n} calls in ${SECONDS} s, ${CONNECTIONS} connections; latency p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms; non-2xx ${result.non2xx}, errors ${result.errors})`);
  console.log(`usage ledger entries: ${ledger.entries} (group commit: ${(Number(logs.n) / Math.max(1, Number(ledger.entries))).toFixed(1)} calls per transaction)`);
  for (const [name, pass] of Object.entries(checks)) console.log(`${pass ? 'ok  ' : 'FAIL'} ${name}`);
  writeFileSync(new URL('./last-run.json', import.meta.url), JSON.stringify({ at: new Date().toISOString(), seconds: SECONDS, connections: CONNECTIONS, metered, calls: Number(logs.n), ledgerEntries: Number(ledger.entries), latency: result.latency, checks }, null, 2) + '\n');
} finally {
  for (const c of children.reverse()) await c.stop();
  await db.stop();
}
process.exit(ok ? 0 : 1);
