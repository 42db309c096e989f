/** Direct database checks for integration tests: SQL, a per-table checksum, waiting for after-commit work. */
import type { TestApp } from './app.js';

export async function sql<T = Record<string, unknown>>(app: TestApp, query: string, params: unknown[] = []): Promise<T[]> {
  return app.orm.em.fork().execute<T[]>(query, params);
}

/** Tables whose rows legitimately change on any request (attempt counters). */
/**
 * Tables that background work writes on its own clock: rate-limit windows, provider health (each
 * instance flushes its attempts' counts every 2 s) and spend leases (heartbeats push their expiry).
 */
const VOLATILE_TABLES = ['rate_limit', 'provider_health', 'spend_lease'];

/** Row count and an md5 of every row's text, per table of the public schema. */
export async function tableChecksums(app: TestApp, exclude: string[] = []): Promise<Record<string, string>> {
  const skip = [...VOLATILE_TABLES, ...exclude];
  const tables = await sql<{ table_name: string }>(
    app,
    `select table_name from information_schema.tables
      where table_schema = 'public' and table_type = 'BASE TABLE' order by table_name`,
  );
  const names = tables.map((t) => t.table_name).filter((t) => !skip.includes(t));
  const query = names
    .map((t) => `select '${t}' as t, count(*)::int as n, coalesce(md5(string_agg(x::text, ',' order by x::text)), '-') as sum from "${t}" x`)
    .join(' union all ');
  const rows = await sql<{ t: string; n: number; sum: string }>(app, query);
  return Object.fromEntries(rows.map((r) => [r.t, `${r.n}:${r.sum}`]));
}

/** Waits until usage already answered is committed and emails queued by committed commands have been handed over (they update the outbox after commit). */
export async function settle(app: TestApp, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  // Usage of calls already answered commits within the meter's window (200 ms): now, not mid-check.
  await app.services.gateway?.meter.flush();
  await app.services.gateway?.events.flush();
  for (;;) {
    const [row] = await sql<{ n: number }>(app, `select count(*)::int as n from email_outbox where status = 'pending'`);
    if (row!.n === 0) return;
    if (Date.now() > deadline) throw new Error(`${row!.n} emails still pending after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Lets a user own more organizations than the Free plan's 3 (the operator override), for tests that need many. */
export async function raiseOrganizationLimit(app: TestApp, userId: string, limit = 1000): Promise<void> {
  await sql(app, 'update app_user set organization_limit = ? where id = ?', [limit, userId]);
}
