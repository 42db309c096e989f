/**
 * Housekeeping that keeps tables small: stored events past replay retention, idle sessions, old
 * counters (rate limits, spend limits of ended periods); and the request log's daily partitions,
 * created a week ahead (server/db/partitions.ts).
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { INACTIVITY_TIMEOUT_MS } from '../auth/session.js';
import { ensureRequestLogPartitions } from '../db/partitions.js';
import type { RowOf } from '../db/rows.js';
import type { RateLimit, Session } from '../modules/auth/entities.js';
import type { StoredEvent } from '../modules/live/entities.js';

/** Events stay replayable at least 24 hours (kept 48 to be generous to clients that were away). */
export const EVENT_RETENTION_HOURS = 48;

export async function runMaintenance(em: EntityManager): Promise<{ events: number; sessions: number; rateLimits: number; spendCounters: number; partitionsCreated: number }> {
  const partitionsCreated = await ensureRequestLogPartitions(em);
  const events = await em.execute<RowOf<typeof StoredEvent, 'id'>[]>(
    `delete from org_event where created_at < now() - make_interval(hours => ?) returning id`,
    [EVENT_RETENTION_HOURS],
  );
  const sessions = await em.execute<RowOf<typeof Session, 'id'>[]>(
    `delete from session where last_verified_at < now() - make_interval(secs => ?::double precision) returning id`,
    [INACTIVITY_TIMEOUT_MS / 1000],
  );
  const rateLimits = await em.execute<RowOf<typeof RateLimit, 'key'>[]>(`delete from rate_limit where window_start < now() - interval '1 day' returning key`);
  // Emailed sign-in links expire after 15 minutes; the rows go a day later (the audit log keeps the history).
  await em.execute(`delete from sign_in_link where expires_at < now() - interval '1 day'`);
  const spendCounters = await pruneSpendCounters(em);
  return { events: events.length, sessions: sessions.length, rateLimits: rateLimits.length, spendCounters, partitionsCreated };
}

/**
 * Spend-limit counters of periods that ended more than 35 days ago (nothing reads them: figures
 * show the current period). A counter row does not name its period; none is longer than a month,
 * so a period that started a month and 35 days ago has ended 35 days ago at least. Lifetime counters
 * (period start the epoch: lifetime limits, the balance, the cap on calls in flight) stay.
 */
export async function pruneSpendCounters(em: Pick<EntityManager, 'execute'>): Promise<number> {
  const rows = await em.execute<{ scope: string }[]>(
    `delete from spend_counter where period_start > 'epoch'::timestamptz and period_start < now() - interval '1 month 35 days' and leased_nanos = 0 returning scope`,
  );
  return rows.length;
}
