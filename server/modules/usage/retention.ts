/**
 * Retention of request logs, by plan and level (shared/plans.ts): a log older than its
 * organization's window is deleted; at level `none` no body is kept at all (bodies stored while the
 * level was `retain` are cleared when it changes). A window of null (Enterprise `retain`) means
 * kept until the operator decides. Rollups are never purged, so analytics keep their history.
 * Deletes go in chunks so a large purge never holds long locks.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { PLAN_IDS, PLANS, type RetentionLevel } from '../../../shared/plans.js';

const CHUNK = 5_000;

async function repeat(em: EntityManager, sql: string, params: unknown[]): Promise<number> {
  let total = 0;
  for (;;) {
    const rows = await em.execute<{ id: string }[]>(sql, params);
    total += rows.length;
    if (rows.length < CHUNK) return total;
  }
}

export async function purgeExpiredLogs(em: EntityManager): Promise<{ deleted: number; bodiesCleared: number; cacheEntries: number }> {
  let deleted = 0;
  for (const plan of PLAN_IDS) {
    for (const level of ['none', 'retain'] as RetentionLevel[]) {
      const days = PLANS[plan].retentionDays[level];
      if (days === null) continue;
      deleted += await repeat(
        em,
        `delete from request_log where id in (
           select l.id from request_log l join organization o on o.id = l.org_id
            where o.plan = ? and o.retention_level = ? and l.created_at < now() - make_interval(days => ?) limit ${CHUNK})
         returning id`,
        [plan, level, days],
      );
    }
  }
  const bodiesCleared = await repeat(
    em,
    `update request_log set request_body = null, response_body = null where id in (
       select l.id from request_log l join organization o on o.id = l.org_id
        where o.retention_level = 'none' and (l.request_body is not null or l.response_body is not null) limit ${CHUNK})
     returning id`,
    [],
  );
  const cacheEntries = await repeat(
    em,
    `delete from response_cache where (project_id, key_hash) in (select project_id, key_hash from response_cache where expires_at < now() limit ${CHUNK}) returning project_id as id`,
    [],
  );
  return { deleted, bodiesCleared, cacheEntries };
}
