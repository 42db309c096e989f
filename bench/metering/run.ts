/**
 * Metered throughput: our gateway (one process, the real buildApp) in front of the local fake
 * upstream, loaded by autocannon at full speed; every call logged, rolled up and charged by group
 * commit, and the organization has a webhook endpoint subscribed to `usage` events, pointing at a
 * local receiver (so the usage summaries also go through the webhook outbox and are delivered).
 * The bare Node proxy (bench/gateway-overhead/bare-proxy-server.ts) is loaded the same way, at the
 * same concurrency, for half of BENCH_SECONDS before and half after, in the same run: the ratio is
 * the figure issue #15's target is about.
 *
 * Afterwards the gateway is stopped with SIGTERM (its meter drains) and the accounting is checked
 * exactly: logs == 2xx answers, sum of log costs == usage ledger == balance change, rollups == logs,
 * and the `usage` webhook events (delivered or still queued) add up to the logs; each delivery the
 * receiver got carried a valid signature and is one the database marks delivered.
 * Exits 1 when any check fails.
 *
 * Knobs: BENCH_SECONDS (15), BENCH_CONNECTIONS (64), WEBHOOK=0 (no webhook), DATABASE_URL (else
 * embedded PostgreSQL).
 */
import autocannon from 'autocannon';
import pg from 'pg';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { loadavg } from 'node:os';
import type { AddressInfo } from 'node:net';
import { startDatabase } from '../live-fanout/setup.js';
import { startTsChild, type Child } from '../gateway-overhead/processes.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 15);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 64);
const WITH_WEBHOOK = process.env.WEBHOOK !== '0';

/** The webhook receiver: answers 204 at once and keeps what it got. */
const received: { body: string; signature: string }[] = [];
const receiver = createServer((req, res) => {
  const parts: Buffer[] = [];
  req.on('data', (c: Buffer) => parts.push(c));
  req.on('end', () => {
    received.push({ body: Buffer.concat(parts).toString('utf8'), signature: String(req.headers['x-gateway-signature'] ?? '') });
    res.writeHead(204).end();
  });
});
await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
const receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;

function signedBy(secret: string, header: string, body: string): boolean {
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header);
  if (!m) return false;
  const expected = createHmac('sha256', secret).update(`${m[1]}.${body}`).digest();
  return timingSafeEqual(expected, Buffer.from(m[2]!, 'hex'));
}

const round = (n: number, d = 2) => Math.round(n * 10 ** d) / 10 ** d;
const loadAtStart = loadavg().map((x) => round(x));
const db = await startDatabase();
const children: Child[] = [];
let ok: boolean;
try {
  const upstream = await startTsChild('upstream-server.ts', {}, 'the fake upstream');
  children.push(upstream);
  const bare = await startTsChild('bare-proxy-server.ts', { UPSTREAM_URL: upstream.url }, 'the bare proxy');
  children.push(bare);
  const gateway = await startTsChild('gateway-server.ts', { DATABASE_URL: db.url, UPSTREAM_URL: upstream.url, ...(WITH_WEBHOOK ? { GATEWAY_WEBHOOK_URL: receiverUrl } : {}) }, 'our gateway');
  children.push(gateway);
  const [apiKey, orgId, webhookId, webhookSecret] = gateway.fields;
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  const balanceBefore = BigInt((await client.query('select credits_nanos from organization where id = $1', [orgId])).rows[0].credits_nanos);

  const load = (url: string, authorization: string, model: string, seconds: number) =>
    autocannon({
      url: `${url}/v1/chat/completions`,
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: 'meter me [chunks:20]' }] }),
      connections: CONNECTIONS,
      duration: seconds,
    });
  // The bare proxy: a short warm-up, then half the time before the gateway's run and half after.
  await load(bare.url, 'Bearer sk-direct', 'gpt-4o-mini', 3);
  const bareBefore = await load(bare.url, 'Bearer sk-direct', 'gpt-4o-mini', Math.max(1, SECONDS / 2));
  const result = await load(gateway.url, `Bearer ${apiKey}`, 'openai/gpt-4o-mini', SECONDS);
  const bareAfter = await load(bare.url, 'Bearer sk-direct', 'gpt-4o-mini', Math.max(1, SECONDS / 2));
  const bareRps = (bareBefore.requests.average + bareAfter.requests.average) / 2;
  await gateway.stop(); // SIGTERM: the meter drains before the process exits
  children.splice(children.indexOf(gateway), 1);

  const ok2xx = result['2xx'];
  const q = async (sql: string, params: unknown[] = [orgId]) => (await client.query(sql, params)).rows[0];
  const logs = await q(`select count(*)::bigint as n, count(*) filter (where status = 200)::bigint as ok, count(*) filter (where paid_by = 'credits' and cost_nanos > 0)::bigint as charged, coalesce(sum(cost_nanos), 0)::text as cost from request_log where org_id = $1`);
  const ledger = await q(`select coalesce(-sum(amount_nanos), 0)::text as total, coalesce(sum(request_count), 0)::bigint as requests, count(*)::bigint as entries from credit_ledger where org_id = $1 and type = 'usage'`);
  const rollups = await q(`select coalesce(sum(requests), 0)::bigint as n, coalesce(sum(cost_nanos), 0)::text as cost from usage_rollup where org_id = $1`);
  const balanceAfter = BigInt((await q('select credits_nanos from organization where id = $1')).credits_nanos);

  const checks: Record<string, boolean> = {
    // Calls still in flight when autocannon stops are answered after it stopped counting (at most one per connection).
    'logs of 200 answers == 2xx seen by the client (+ in flight at the end)': Number(logs.ok) >= ok2xx && Number(logs.ok) <= ok2xx + CONNECTIONS,
    'sum of log costs == usage ledger': BigInt(logs.cost) === BigInt(ledger.total),
    'usage ledger == balance change': BigInt(ledger.total) === balanceBefore - balanceAfter,
    'ledger request counts == charged logs': Number(ledger.requests) === Number(logs.charged),
    'rollups == logs': Number(rollups.n) === Number(logs.n) && rollups.cost === logs.cost,
  };
  let webhookFigures: Record<string, number> | null = null;
  if (WITH_WEBHOOK) {
    // Every usage summary is a delivery row (outbox, same transaction as the event); the dispatcher
    // stopped with the gateway, so the last ones may still be pending.
    const rows = (await client.query(`select event_id::text as id, status, body from webhook_delivery where endpoint_id = $1 and event_type = 'usage'`, [webhookId])).rows as { id: string; status: string; body: string }[];
    const requestsOf = (body: string) => Number((JSON.parse(body) as { data: { requests: number } }).data.requests);
    const delivered = new Set(rows.filter((r) => r.status === 'delivered').map((r) => r.id));
    const got = new Map<string, string>(); // event id -> body (deliveries are at least once: a repeat is the same event)
    let badSignatures = 0;
    for (const r of received) {
      if (!signedBy(webhookSecret!, r.signature, r.body)) badSignatures++;
      const body = JSON.parse(r.body) as { id: string; type: string };
      if (body.type === 'usage') got.set(body.id, r.body);
    }
    checks['usage webhook events (delivered + queued) add up to the logs'] = rows.reduce((n, r) => n + requestsOf(r.body), 0) === Number(logs.n);
    checks['every delivery received is signed, and is one marked delivered'] = badSignatures === 0 && [...got.keys()].every((id) => delivered.has(id));
    checks['every delivery marked delivered was received'] = [...delivered].every((id) => got.has(id));
    webhookFigures = {
      events: rows.length,
      delivered: delivered.size,
      pending: rows.filter((r) => r.status === 'pending').length,
      failed: rows.filter((r) => r.status === 'failed').length,
      received: received.length,
      requestsInDelivered: [...got.values()].reduce((n, b) => n + requestsOf(b), 0),
    };
  }
  await client.end();

  ok = Object.values(checks).every(Boolean);
  const metered = Math.round(Number(logs.n) / SECONDS);
  const loadAtEnd = loadavg().map((x) => round(x));
  console.log(`\nload average at start ${loadAtStart.join(' ')}, at end ${loadAtEnd.join(' ')}`);
  console.log(`metered requests/s: ${metered} (${logs.n} calls in ${SECONDS} s, ${CONNECTIONS} connections; latency p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms; non-2xx ${result.non2xx}, errors ${result.errors})`);
  console.log(`bare Node proxy at ${CONNECTIONS} connections, same run: ${Math.round(bareRps)} req/s (before ${Math.round(bareBefore.requests.average)}, after ${Math.round(bareAfter.requests.average)}); metered / bare = ${round(metered / bareRps)} (target >= 0.5: ${metered / bareRps >= 0.5 ? 'met' : 'MISSED'})`);
  console.log(`usage ledger entries: ${ledger.entries} (group commit: ${(Number(logs.n) / Math.max(1, Number(ledger.entries))).toFixed(1)} calls per transaction)`);
  if (webhookFigures) console.log(`usage webhook: ${webhookFigures.events} events, ${webhookFigures.delivered} delivered (${webhookFigures.requestsInDelivered} requests in them), ${webhookFigures.pending} still queued at shutdown, ${webhookFigures.failed} failed; ${webhookFigures.received} POSTs received`);
  for (const [name, pass] of Object.entries(checks)) console.log(`${pass ? 'ok  ' : 'FAIL'} ${name}`);
  writeFileSync(
    new URL('./last-run.json', import.meta.url),
    JSON.stringify(
      { at: new Date().toISOString(), seconds: SECONDS, connections: CONNECTIONS, loadAverage: { start: loadAtStart, end: loadAtEnd }, metered, bareRps: Math.round(bareRps), meteredOverBare: round(metered / bareRps), calls: Number(logs.n), ledgerEntries: Number(ledger.entries), latency: result.latency, webhook: webhookFigures, checks },
      null,
      2,
    ) + '\n',
  );
} finally {
  for (const c of children.reverse()) await c.stop();
  await db.stop();
  receiver.close();
}
process.exit(ok ? 0 : 1);
