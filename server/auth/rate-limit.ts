/**
 * Fixed-window rate limits kept in PostgreSQL, so every instance counts against the same window.
 * One upsert per attempt; the row resets when its window has passed.
 *
 * Sign-in (docs/decisions.md "Limits"): guesses are limited per (account, IP) pair and per IP, so an
 * attacker slows only themselves down; failures against one account from everywhere only raise
 * the bar to a second factor (TOTP, or an emailed link), they never lock the owner out.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import type { RowOf } from '../db/rows.js';
import type { RateLimit } from '../modules/auth/entities.js';

export interface Limit { max: number; windowSeconds: number }

type Sql = Pick<EntityManager, 'execute'>;

export async function consumeRateLimit(em: Sql, key: string, limit: Limit): Promise<{ allowed: boolean; retryAfterSeconds: number; count: number }> {
  const rows = await em.execute<RowOf<typeof RateLimit, 'count' | 'window_start'>[]>(
    `insert into rate_limit (key, window_start, count) values (?, now(), 1)
     on conflict (key) do update set
       count = case when rate_limit.window_start < now() - make_interval(secs => ?::double precision) then 1 else rate_limit.count + 1 end,
       window_start = case when rate_limit.window_start < now() - make_interval(secs => ?::double precision) then now() else rate_limit.window_start end
     returning count, window_start`,
    [key.slice(0, 300), limit.windowSeconds, limit.windowSeconds],
  );
  const row = rows[0]!;
  const elapsed = (Date.now() - new Date(row.window_start).getTime()) / 1000;
  return { allowed: row.count <= limit.max, retryAfterSeconds: Math.max(1, Math.ceil(limit.windowSeconds - elapsed)), count: row.count };
}

/** The count in the key's current window (0 when there is none, or it has passed). */
export async function currentCount(em: Sql, key: string, limit: Limit): Promise<number> {
  const rows = await em.execute<RowOf<typeof RateLimit, 'count'>[]>(
    `select count from rate_limit where key = ? and window_start >= now() - make_interval(secs => ?::double precision)`,
    [key.slice(0, 300), limit.windowSeconds],
  );
  return rows[0]?.count ?? 0;
}

export async function resetRateLimit(em: Sql, key: string): Promise<void> {
  await em.execute('delete from rate_limit where key = ?', [key.slice(0, 300)]);
}

/** Attempts per (account, IP) pair: the attacker's own budget; a correct sign-in resets it. */
export const SIGN_IN_PER_ACCOUNT_AND_IP: Limit = { max: 10, windowSeconds: 15 * 60 };
/** Attempts per IP, whatever the accounts (password spraying). */
export const SIGN_IN_PER_IP: Limit = { max: 50, windowSeconds: 15 * 60 };
/**
 * Failed attempts against one account from every IP. Past `max` (more than three pairs' worth, so
 * it takes several IPs), a password alone no longer signs in: TOTP accounts need their code (as
 * always), others get an emailed one-time link. Never a refusal.
 */
export const SIGN_IN_FAILURES_PER_ACCOUNT: Limit = { max: 30, windowSeconds: 15 * 60 };
/** Sign-in links emailed per account (someone who has the password could otherwise flood the inbox). */
export const SIGN_IN_LINKS_PER_ACCOUNT: Limit = { max: 5, windowSeconds: 15 * 60 };
export const SIGN_UP_PER_IP: Limit = { max: 30, windowSeconds: 60 * 60 };
/** "Someone tried to sign up with your address" emails per account. */
export const SIGN_UP_NOTICES_PER_ACCOUNT: Limit = { max: 3, windowSeconds: 60 * 60 };

export const signInKeys = {
  ip: (ip: string) => `signin:ip:${ip}`,
  pair: (email: string, ip: string) => `signin:pair:${ip}:${email}`,
  accountFailures: (email: string) => `signin:fail:${email}`,
  links: (userId: string) => `signin:link:${userId}`,
};
