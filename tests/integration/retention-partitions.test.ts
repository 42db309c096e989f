/**
 * The request log is partitioned by day: retention drops a whole partition once every row in it is
 * past every window (unless an organization with an unlimited window has rows there), still deletes
 * rows for shorter windows, and the job runner's upkeep creates partitions ahead, moving rows that
 * had landed in the default partition.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import type { MikroORM } from '@mikro-orm/postgresql';
import { createTestDatabase } from '../helpers/db.js';
import { openDatabase } from '../../server/db/orm.js';
import { createRequestLogPartition, ensureRequestLogPartitions, listRequestLogPartitions, partitionName, utcDay } from '../../server/db/partitions.js';
import { partitionDropHorizonDays, purgeExpiredLogs } from '../../server/modules/usage/retention.js';
import { runMaintenance } from '../../server/jobs/maintenance.js';

let orm: MikroORM;
const DAY = 86_400_000;
const dayAgo = (n: number) => new Date(utcDay(new Date()).getTime() - n * DAY);

beforeAll(async () => {
  orm = await openDatabase(await createTestDatabase(), { pool: { min: 0, max: 2 } });
});

afterAll(async () => {
  await orm?.close(true);
});

async function org(plan: string, level: string): Promise<string> {
  const id = randomUUID();
  await orm.em.fork().execute(`insert into organization (id, name, plan, retention_level, created_at) values (?, ?, ?, ?, now())`, [id, `${plan}/${level}`, plan, level]);
  return id;
}

/** A log of `orgId` at noon UTC `daysAgo` days ago (or at an exact time). */
async function log(orgId: string, at: Date): Promise<void> {
  await orm.em.fork().execute(
    `insert into request_log (org_id, project_id, api_key_id, provider, model, paid_by, latency_ms, status, request_body, created_at)
     values (?, ?, ?, 'openai', 'gpt-4o-mini', 'credits', 5, 200, '{"messages":[]}', ?::timestamptz)`,
    [orgId, randomUUID(), randomUUID(), at.toISOString()],
  );
}
const noon = (daysAgo: number) => new Date(dayAgo(daysAgo).getTime() + DAY / 2);

async function where(orgId: string): Promise<string[]> {
  const rows = await orm.em.fork().execute<{ part: string; days: number }[]>(
    `select tableoid::regclass::text as part, round(extract(epoch from now() - created_at) / 86400)::int as days from request_log where org_id = ? order by created_at`,
    [orgId],
  );
  return rows.map((r) => `${r.days}@${r.part}`);
}

it('migrates with today and the next 7 days partitioned, and the job runner keeps them ahead', async () => {
  const names = (await listRequestLogPartitions(orm.em.fork())).map((p) => p.name);
  for (let i = 0; i <= 7; i++) expect(names).toContain(partitionName(dayAgo(-i)));
  const orgId = await org('pro', 'retain');
  // Written while its day had no partition: lands in the default one, then moves into the new partition.
  await log(orgId, noon(-10));
  expect(await where(orgId)).toEqual(['-10@request_log_default']);
  expect(await ensureRequestLogPartitions(orm.em.fork(), 12)).toBe(5);
  expect(await where(orgId)).toEqual([`-10@${partitionName(dayAgo(-10))}`]);
  expect(await ensureRequestLogPartitions(orm.em.fork(), 12)).toBe(0);
  expect((await runMaintenance(orm.em.fork())).partitionsCreated).toBe(0);
});

it('drops whole partitions past the longest window, deletes rows for shorter ones, keeps unlimited ones', async () => {
  const horizon = partitionDropHorizonDays();
  expect(horizon).toBe(90);
  const free = await org('free', 'none');
  const pro = await org('pro', 'retain');
  const proNone = await org('pro', 'none');
  const enterprise = await org('enterprise', 'retain');
  for (const days of [120, 100, 50, 5, 1]) await createRequestLogPartition(orm.em.fork(), dayAgo(days));
  // 120 days ago: only limited windows, so the partition goes whole.
  await log(free, noon(120));
  await log(pro, noon(120));
  // 100 days ago: an unlimited window keeps the partition; the others' rows go one by one.
  await log(pro, noon(100));
  await log(enterprise, noon(100));
  // Within the longest window: rows past a shorter window go.
  for (const days of [50, 5, 1]) {
    await log(free, noon(days));
    await log(pro, noon(days));
    await log(proNone, noon(days));
  }
  // Outside every daily partition: the default partition, row by row.
  await log(pro, noon(200));

  const result = await purgeExpiredLogs(orm.em.fork());
  expect(result.partitionsDropped).toBe(1);
  expect(result.deleted).toBe(1 /* pro@100 */ + 1 /* pro@200 */ + 2 /* free@50,5 */ + 2 /* proNone@50,5 */);
  expect((await listRequestLogPartitions(orm.em.fork())).map((p) => p.name)).not.toContain(partitionName(dayAgo(120)));
  expect(await where(free)).toEqual([`1@${partitionName(dayAgo(1))}`]);
  expect(await where(pro)).toEqual([50, 5, 1].map((d) => `${d}@${partitionName(dayAgo(d))}`));
  expect(await where(enterprise)).toEqual([`100@${partitionName(dayAgo(100))}`]);
  // Level none keeps no body, partition by partition.
  expect(result.bodiesCleared).toBe(2 /* free@1, proNone@1 */);
  const bodies = await orm.em.fork().execute<{ n: number }[]>(`select count(*)::int as n from request_log where org_id in (?, ?) and request_body is not null`, [free, proNone]);
  expect(bodies[0]!.n).toBe(0);
  // Idempotent.
  expect(await purgeExpiredLogs(orm.em.fork())).toEqual({ deleted: 0, partitionsDropped: 0, bodiesCleared: 0, cacheEntries: 0, storedResponses: 0 });
});
