/**
 * Housekeeping that keeps tables small: stored events past replay retention, idle sessions, old
 * counters; and the request log's daily partitions, created a week ahead (server/db/partitions.ts).
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { INACTIVITY_TIMEOUT_MS } from '../auth/session.js';
import { ensureRequestLogPartitions } from '../db/partitions.js';
import type { RowOf } from '../db/rows.js';
import type { RateLimit, Session } from '../modules/auth/entities.js';
import type { StoredEvent } from '../modules/live/entities.js';

/** Events stay replayable at least 24 hours (kept 48 to be generous to clients that were away). */
export const EVENT_RETENTION_HOURS = 48;

export async function runMaintenance(em: EntityManager): Promise<{ events: number; sessions: number; rateLimits: number; partitionsCreated: number }> {
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
  return { events: events.length, sessions: sessions.length, rateLimits: rateLimits.length, partitionsCreated };
}
