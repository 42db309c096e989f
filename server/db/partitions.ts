/**
 * Daily partitions of `request_log` (declarative range partitioning on created_at; migration
 * 20261201010000). A partition `request_log_pYYYYMMDD` covers [day, day + 1) in UTC;
 * `request_log_default` takes rows outside every created partition. The job runner creates
 * partitions ahead (`ensureRequestLogPartitions`, from runMaintenance); retention drops whole
 * partitions once every row in them is past every organization's window
 * (server/modules/usage/retention.ts). The partitions are not entities: db:check compares the
 * partitioned parent table, which MikroORM reads like any table, and skips its partitions.
 */
import type { EntityManager } from '@mikro-orm/postgresql';

export const REQUEST_LOG_DEFAULT_PARTITION = 'request_log_default';
/** How many days ahead of today the job runner keeps partitions created. */
export const PARTITIONS_AHEAD_DAYS = 7;
const DAY_MS = 86_400_000;
const NAME = /^request_log_p(\d{4})(\d{2})(\d{2})$/;

/** Midnight UTC of `at`'s day. */
export function utcDay(at: Date): Date {
  return new Date(Math.floor(at.getTime() / DAY_MS) * DAY_MS);
}

export function partitionName(day: Date): string {
  return `request_log_p${utcDay(day).toISOString().slice(0, 10).replaceAll('-', '')}`;
}

export interface DailyPartition {
  name: string;
  /** Inclusive start (midnight UTC). */
  from: Date;
  /** Exclusive end: the next midnight UTC. */
  to: Date;
}

/** The daily partitions that exist, oldest first (the default partition is not among them). */
export async function listRequestLogPartitions(em: EntityManager): Promise<DailyPartition[]> {
  const rows = await em.execute<{ name: string }[]>(
    `select c.relname as name from pg_inherits i join pg_class c on c.oid = i.inhrelid where i.inhparent = 'request_log'::regclass`,
  );
  const parts: DailyPartition[] = [];
  for (const { name } of rows) {
    const m = NAME.exec(name);
    if (!m) continue;
    const from = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
    parts.push({ name, from, to: new Date(from.getTime() + DAY_MS) });
  }
  return parts.sort((a, b) => a.from.getTime() - b.from.getTime());
}

/**
 * Creates the daily partition of `day` if it is missing. Rows of that day already in the default
 * partition (written while the partition did not exist) move into it, in the same transaction:
 * PostgreSQL refuses to create a partition whose rows sit in the default one.
 */
export async function createRequestLogPartition(em: EntityManager, day: Date): Promise<boolean> {
  const name = partitionName(day);
  const from = utcDay(day);
  const to = new Date(from.getTime() + DAY_MS);
  return em.transactional(async (tx) => {
    // One creator at a time (instances, or the job and a bench); the check below then sees the winner's partition.
    await tx.execute(`select pg_advisory_xact_lock(hashtext('request_log partitions'))`);
    const exists = await tx.execute<{ n: number }[]>(`select count(*)::int as n from pg_class where relname = ? and relkind = 'r'`, [name]);
    if (exists[0]!.n > 0) return false;
    const range = [from.toISOString(), to.toISOString()];
    await tx.execute(
      `create temporary table request_log_moving on commit drop as
         with moved as (delete from ${REQUEST_LOG_DEFAULT_PARTITION} where created_at >= ? and created_at < ? returning *) select * from moved`,
      range,
    );
    await tx.execute(`create table "${name}" partition of request_log for values from ('${range[0]}') to ('${range[1]}')`);
    await tx.execute(`insert into request_log select * from request_log_moving`);
    return true;
  });
}

/** Makes sure today's partition and the next `daysAhead` days' exist; answers how many were created. */
export async function ensureRequestLogPartitions(em: EntityManager, daysAhead = PARTITIONS_AHEAD_DAYS, now = new Date()): Promise<number> {
  const existing = new Set((await listRequestLogPartitions(em)).map((p) => p.name));
  let created = 0;
  for (let i = 0; i <= daysAhead; i++) {
    const day = new Date(utcDay(now).getTime() + i * DAY_MS);
    if (existing.has(partitionName(day))) continue;
    if (await createRequestLogPartition(em, day)) created++;
  }
  return created;
}

/** Drops a daily partition and every row in it: a catalog change, however many rows it holds. */
export async function dropRequestLogPartition(em: EntityManager, name: string): Promise<void> {
  if (!NAME.test(name)) throw new Error(`not a daily request_log partition: ${name}`);
  await em.execute(`drop table if exists "${name}"`);
}
