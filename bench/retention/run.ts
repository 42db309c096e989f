/**
 * Retention of BENCH_LOGS (default 10,000,000) request logs spread evenly over the last 100 days,
 * of organizations on Pro with bodies retained (a 90-day window: the oldest 10 days expire), twice:
 *
 *  - before: the request log as it was (one table, migrations up to 20261129050000), purged with the
 *    retention code it had (chunked row deletes, copied below as `purgeByRowDeletes`);
 *  - after: the partitioned request log (every migration; one partition per day, as the job runner
 *    keeps them), purged with server/modules/usage/retention.ts (whole partitions dropped).
 *
 * Reports wall time, rows gone, WAL written, dead tuples left for vacuum, and the table's size.
 * Knobs: BENCH_LOGS, BENCH_ORGS (10), DATABASE_URL (else an embedded PostgreSQL in a temp dir).
 */
import pg from 'pg';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import type { EntityManager } from '@mikro-orm/postgresql';
import { startDatabase } from '../live-fanout/setup.js';
import { migrate, openDatabase, ormConfig } from '../../server/db/orm.js';
import { createRequestLogPartition, utcDay } from '../../server/db/partitions.js';
import { purgeExpiredLogs } from '../../server/modules/usage/retention.js';
import { PLAN_IDS, PLANS, type RetentionLevel } from '../../shared/plans.js';

const LOGS = Number(process.env.BENCH_LOGS ?? 10_000_000);
const ORGS = Number(process.env.BENCH_ORGS ?? 10);
const DAYS = 100;
const CHUNK = 1_000_000;
const DAY = 86_400_000;

/** Retention as it was before partitioning (server/modules/usage/retention.ts at 20261129050000). */
async function purgeByRowDeletes(em: EntityManager): Promise<{ deleted: number }> {
  const chunk = 5_000;
  const repeat = async (sql: string, params: unknown[]) => {
    let total = 0;
    for (;;) {
      const rows = await em.execute<{ id: string }[]>(sql, params);
      total += rows.length;
      if (rows.length < chunk) return total;
    }
  };
  let deleted = 0;
  for (const plan of PLAN_IDS) {
    for (const level of ['none', 'retain'] as RetentionLevel[]) {
      const days = PLANS[plan].retentionDays[level];
      if (days === null) continue;
      deleted += await repeat(
        `delete from request_log where id in (
           select l.id from request_log l join organization o on o.id = l.org_id
            where o.plan = ? and o.retention_level = ? and l.created_at < now() - make_interval(days => ?) limit ${chunk})
         returning id`,
        [plan, level, days],
      );
    }
  }
  await repeat(
    `update request_log set request_body = null, response_body = null where id in (
       select l.id from request_log l join organization o on o.id = l.org_id
        where o.retention_level = 'none' and (l.request_body is not null or l.response_body is not null) limit ${chunk})
     returning id`,
    [],
  );
  return { deleted };
}

async function fill(client: pg.Client, label: string): Promise<void> {
  const orgs = Array.from({ length: ORGS }, () => randomUUID());
  for (const [i, id] of orgs.entries()) {
    await client.query(`insert into organization (id, name, plan, retention_level, created_at) values ($1, $2, 'pro', 'retain', now())`, [id, `Retention ${i}`]);
  }
  const t0 = performance.now();
  for (let start = 0; start < LOGS; start += CHUNK) {
    const end = Math.min(LOGS, start + CHUNK);
    // Spread evenly over [now - 100 days, now), newest first; 1 in 4 logs has small bodies.
    await client.query(
      `insert into request_log (org_id, project_id, api_key_id, provider, model, input_tokens, output_tokens, cost_nanos, paid_by,
                                latency_ms, status, request_body, response_body, created_at)
       select ($1::uuid[])[1 + g % $2], $3, $4, 'openai', 'gpt-4o-mini', 100 + g % 900, 20 + g % 300, 1000 + g % 5000, 'credits',
              150 + g % 1800, 200,
              case when g % 4 = 0 then '{"messages":[{"role":"user","content":"hi"}]}'::jsonb end,
              case when g % 4 = 0 then '{"choices":[{"message":{"content":"hello"}}]}'::jsonb end,
              now() - ((g::double precision / $5) * interval '${DAYS} days')
         from generate_series($6::bigint, $7::bigint) g`,
      [orgs, ORGS, randomUUID(), randomUUID(), LOGS, start, end - 1],
    );
    process.stdout.write(`  ${label}: ${end.toLocaleString()} rows (${((performance.now() - t0) / 1000).toFixed(0)} s)\n`);
  }
  await client.query('vacuum analyze request_log');
}

async function stats(client: pg.Client) {
  const size = await client.query<{ bytes: string; rows: string }>(
    `select coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint as bytes, (select count(*) from request_log)::bigint as rows
       from pg_class c where c.oid = 'request_log'::regclass or c.oid in (select inhrelid from pg_inherits where inhparent = 'request_log'::regclass)`,
  );
  const dead = await client.query<{ n: string }>(`select coalesce(sum(n_dead_tup), 0)::bigint as n from pg_stat_user_tables where relname like 'request_log%'`);
  return { bytes: Number(size.rows[0]!.bytes), rows: Number(size.rows[0]!.rows), deadTuples: Number(dead.rows[0]!.n) };
}

const walLsn = async (client: pg.Client) => (await client.query<{ lsn: string }>('select pg_current_wal_lsn()::text as lsn')).rows[0]!.lsn;
const walBytes = async (client: pg.Client, from: string) => Number((await client.query<{ n: string }>('select pg_wal_lsn_diff(pg_current_wal_lsn(), $1)::bigint as n', [from])).rows[0]!.n);

async function run(serverUrl: string, variant: 'before' | 'after') {
  const name = `retention_${variant}_${Date.now()}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`create database ${name}`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  const orm = await openDatabase(url.toString(), { migrations: { ...ormConfig(url.toString()).migrations, silent: true } });
  const client = new pg.Client({ connectionString: url.toString() });
  try {
    if (variant === 'before') await orm.getMigrator().up({ to: 'Migration20261129050000CacheWrites' });
    else await migrate(orm);
    await client.connect();
    if (variant === 'after') {
      // A deployment that has run partitioned for 100 days: one partition per day of history.
      const today = utcDay(new Date()).getTime();
      for (let d = DAYS; d >= 1; d--) await createRequestLogPartition(orm.em.fork(), new Date(today - d * DAY));
    }
    await fill(client, variant);
    const start = await stats(client);
    const lsn = await walLsn(client);
    const t = performance.now();
    const result = variant === 'before' ? await purgeByRowDeletes(orm.em.fork()) : await purgeExpiredLogs(orm.em.fork());
    const seconds = (performance.now() - t) / 1000;
    const wal = await walBytes(client, lsn);
    const end = await stats(client);
    const out = {
      variant,
      seconds: Number(seconds.toFixed(3)),
      rowsBefore: start.rows,
      rowsAfter: end.rows,
      rowsGone: start.rows - end.rows,
      result,
      walMB: Number((wal / 2 ** 20).toFixed(1)),
      deadTuplesLeft: end.deadTuples,
      sizeMBBefore: Number((start.bytes / 2 ** 20).toFixed(0)),
      sizeMBAfter: Number((end.bytes / 2 ** 20).toFixed(0)),
    };
    console.log(out);
    return out;
  } finally {
    await client.end().catch(() => {});
    await orm.close(true);
    await admin.query(`drop database if exists ${name} with (force)`);
    await admin.end();
  }
}

const db = await startDatabase();
try {
  console.log(`retention of ${LOGS.toLocaleString()} request logs over ${DAYS} days, ${ORGS} organizations on Pro/retain (90 days)`);
  const before = await run(db.url, 'before');
  const after = await run(db.url, 'after');
  const summary = { at: new Date().toISOString(), logs: LOGS, orgs: ORGS, days: DAYS, before, after };
  writeFileSync(new URL('./last-run.json', import.meta.url), JSON.stringify(summary, null, 2) + '\n');
  console.log(`before: ${before.seconds} s, ${before.rowsGone.toLocaleString()} rows deleted, ${before.walMB} MB WAL, ${before.deadTuplesLeft.toLocaleString()} dead tuples`);
  console.log(`after:  ${after.seconds} s, ${after.rowsGone.toLocaleString()} rows gone in ${'partitionsDropped' in after.result ? after.result.partitionsDropped : 0} partitions, ${after.walMB} MB WAL, ${after.deadTuplesLeft.toLocaleString()} dead tuples`);
} finally {
  await db.stop();
}
