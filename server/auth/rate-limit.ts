/**
 * Fixed-window rate limits kept in PostgreSQL, so every instance counts against the same window.
 * One upsert per attempt; the row resets when its window has passed.
 */
import type { EntityManager } from '@mikro-orm/postgresql';

export interface Limit { max: number; windowSeconds: number }

export async function consumeRateLimit(em: EntityManager, key: string, limit: Limit): Promise<{ allowed: boolean; retryAfterSeconds: number }> {
  const rows = await em.execute<{ count: number; window_start: Date }[]>(
    `insert into rate_limit (key, window_start, count) values (?, now(), 1)
     on conflict (key) do update set
       count = case when rate_limit.window_start < now() - make_interval(secs => ?::double precision) then 1 else rate_limit.count + 1 end,
       window_start = case when rate_limit.window_start < now() - make_interval(secs => ?::double precision) then now() else rate_limit.window_start end
     returning count, window_start`,
    [key.slice(0, 300), limit.windowSeconds, limit.windowSeconds],
  );
  const row = rows[0]!;
  const elapsed = (Date.now() - new Date(row.window_start).getTime()) / 1000;
  return { allowed: row.count <= limit.max, retryAfterSeconds: Math.max(1, Math.ceil(limit.windowSeconds - elapsed)) };
}

export async function resetRateLimit(em: EntityManager, key: string): Promise<void> {
  await em.execute('delete from rate_limit where key = ?', [key]);
}

export const SIGN_IN_PER_EMAIL: Limit = { max: 10, windowSeconds: 15 * 60 };
export const SIGN_IN_PER_IP: Limit = { max: 50, windowSeconds: 15 * 60 };
export const SIGN_UP_PER_IP: Limit = { max: 30, windowSeconds: 60 * 60 };
