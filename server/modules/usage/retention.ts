/**
 * Retention of request logs, by plan and level (shared/plans.ts): a log older than its
 * organization's window is deleted; at level `none` no body is kept at all (bodies stored while the
 * level was `retain` are cleared when it changes). A window of null (Enterprise `retain`) means
 * kept until the operator decides. Rollups are never purged, so analytics keep their history.
 *
 * The request log is partitioned by day (server/db/partitions.ts). A daily partition entirely older
 * than the longest finite window any plan has is dropped whole (a catalog change, not millions of
 * row deletes), unless it holds a row of an organization whose window is unlimited. Shorter windows
 * are still applied row by row, partition by partition, in chunks so a large purge never holds long
 * locks; the same goes for the default partition and for partitions kept for unlimited windows.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { PLAN_IDS, PLANS, type PlanId, type RetentionLevel } from '../../../shared/plans.js';
import { dropRequestLogPartition, listRequestLogPartitions, REQUEST_LOG_DEFAULT_PARTITION } from '../../db/partitions.js';
import type { Row, RowOf } from '../../db/rows.js';
import type { Organization } from '../organizations/entities.js';

const CHUNK = 5_000;
const DAY_MS = 86_400_000;
const LEVELS: RetentionLevel[] = ['none', 'retain'];

/** Every (plan, level) pair with its window in days (null: unlimited). */
function windows(): { plan: PlanId; level: RetentionLevel; days: number | null }[] {
  return PLAN_IDS.flatMap((plan) => LEVELS.map((level) => ({ plan, level, days: PLANS[plan].retentionDays[level] })));
}

/** The longest finite window any organization can have: a partition older than this holds only expired rows, or rows kept forever. */
export function partitionDropHorizonDays(): number {
  return Math.max(...windows().flatMap((w) => (w.days === null ? [] : [w.days])));
}

async function repeat(em: EntityManager, sql: string, params: unknown[]): Promise<number> {
  let total = 0;
  for (;;) {
    const rows = await em.execute<{ id: unknown }[]>(sql, params);
    total += rows.length;
    if (rows.length < CHUNK) return total;
  }
}

export interface PurgeResult {
  /** Rows deleted one by one (rows in dropped partitions are not counted). */
  deleted: number;
  /** Whole daily partitions dropped. */
  partitionsDropped: number;
  bodiesCleared: number;
  cacheEntries: number;
  /** Stored responses (previous_response_id) deleted: level `none`, or past the window. */
  storedResponses: number;
}

/** Drops the daily partitions every row of which is past its window. */
async function dropExpiredPartitions(em: EntityManager, now: Date): Promise<number> {
  const cutoff = now.getTime() - partitionDropHorizonDays() * DAY_MS;
  const unlimited = windows().filter((w) => w.days === null);
  const anyUnlimited = async () =>
    unlimited.length > 0 &&
    (await em.execute(`select 1 as one from organization where (plan, retention_level) in (${unlimited.map(() => '(?, ?)').join(', ')}) limit 1`, unlimited.flatMap((w) => [w.plan, w.level]))).length > 0;
  const expired = (await listRequestLogPartitions(em)).filter((part) => part.to.getTime() <= cutoff);
  if (expired.length === 0) return 0;
  const checkEach = await anyUnlimited();
  let dropped = 0;
  for (const part of expired) {
    if (checkEach) {
      const kept = await em.execute<{ one: number }[]>(
        `select 1 as one from "${part.name}" l join organization o on o.id = l.org_id
          where (o.plan, o.retention_level) in (${unlimited.map(() => '(?, ?)').join(', ')}) limit 1`,
        unlimited.flatMap((w) => [w.plan, w.level]),
      );
      if (kept.length > 0) continue;
    }
    await dropRequestLogPartition(em, part.name);
    dropped++;
  }
  return dropped;
}

export async function purgeExpiredLogs(em: EntityManager): Promise<PurgeResult> {
  // The database's clock, as the rows' created_at is.
  const now = new Date(Number((await em.execute<{ ms: string }[]>(`select floor(extract(epoch from now()) * 1000)::bigint as ms`))[0]!.ms));
  const partitionsDropped = await dropExpiredPartitions(em, now);
  const tables = [...(await listRequestLogPartitions(em)), { name: REQUEST_LOG_DEFAULT_PARTITION, from: new Date(0) }];
  // The finite windows some organization has: (plan, level, the created_at before which its logs go).
  const present = new Set(
    (await em.execute<(RowOf<typeof Organization, 'plan'> & { level: Row<typeof Organization>['retention_level'] })[]>(`select distinct plan, retention_level as level from organization`)).map((r) => `${r.plan}/${r.level}`),
  );
  const finite = windows().flatMap((w) =>
    w.days === null || !present.has(`${w.plan}/${w.level}`) ? [] : [{ ...w, cutoff: new Date(now.getTime() - w.days * DAY_MS) }],
  );
  let deleted = 0;
  for (const table of tables) {
    // Only the windows that can have expired rows in this partition (it starts before their cutoff).
    const applicable = finite.filter((w) => w.cutoff.getTime() > table.from.getTime());
    if (applicable.length === 0) continue;
    const latest = new Date(Math.max(...applicable.map((w) => w.cutoff.getTime())));
    deleted += await repeat(
      em,
      `delete from "${table.name}" where ctid = any(array(
         select l.ctid from "${table.name}" l join organization o on o.id = l.org_id
           join (values ${applicable.map(() => '(?, ?, ?::timestamptz)').join(', ')}) as w(plan, level, cutoff)
             on w.plan = o.plan and w.level = o.retention_level
          where l.created_at < w.cutoff and l.created_at < ?::timestamptz limit ${CHUNK}))
       returning id`,
      [...applicable.flatMap((w) => [w.plan, w.level, w.cutoff.toISOString()]), latest.toISOString()],
    );
  }
  let bodiesCleared = 0;
  const anyAtNone = (await em.execute(`select 1 as one from organization where retention_level = 'none' limit 1`)).length > 0;
  for (const table of anyAtNone ? tables : []) {
    bodiesCleared += await repeat(
      em,
      `update "${table.name}" set request_body = null, response_body = null where ctid = any(array(
         select l.ctid from "${table.name}" l join organization o on o.id = l.org_id
          where o.retention_level = 'none' and (l.request_body is not null or l.response_body is not null) limit ${CHUNK}))
       returning id`,
      [],
    );
  }
  const cacheEntries = await repeat(
    em,
    `delete from response_cache where (project_id, key_hash) in (select project_id, key_hash from response_cache where expires_at < now() limit ${CHUNK}) returning project_id as id`,
    [],
  );
  const storedResponses = await purgeStoredResponses(em, finite);
  return { deleted, partitionsDropped, bodiesCleared, cacheEntries, storedResponses };
}

/**
 * Stored responses (POST /v1/responses of translated models, kept for previous_response_id) follow
 * the bodies: gone once the organization's level is `none`, and past the level's window otherwise.
 */
async function purgeStoredResponses(em: EntityManager, finite: { plan: PlanId; level: RetentionLevel; cutoff: Date }[]): Promise<number> {
  let n = await repeat(
    em,
    `delete from stored_response where ctid = any(array(
       select s.ctid from stored_response s join organization o on o.id = s.org_id where o.retention_level = 'none' limit ${CHUNK}))
     returning id`,
    [],
  );
  const windowed = finite.filter((w) => w.level !== 'none');
  if (windowed.length > 0) {
    n += await repeat(
      em,
      `delete from stored_response where ctid = any(array(
         select s.ctid from stored_response s join organization o on o.id = s.org_id
           join (values ${windowed.map(() => '(?, ?, ?::timestamptz)').join(', ')}) as w(plan, level, cutoff)
             on w.plan = o.plan and w.level = o.retention_level
          where s.created_at < w.cutoff limit ${CHUNK}))
       returning id`,
      windowed.flatMap((w) => [w.plan, w.level, w.cutoff.toISOString()]),
    );
  }
  return n;
}
