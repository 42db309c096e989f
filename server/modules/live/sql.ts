/** Raw SQL for the live module: on the pool (long-lived streams) or inside a unit of work. */
import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';

/** Runs one statement (knex-style `?` placeholders) and returns its rows. */
export type Query = <T>(sql: string, params: unknown[]) => Promise<T>;

/**
 * On the pool, outside any EntityManager: a stream lives as long as its subscriber, and an
 * EntityManager fork held that long costs several kilobytes per idle subscription.
 */
export function poolQuery(orm: MikroORM): Query {
  // One function per ORM, not one per subscription.
  let query = poolQueries.get(orm);
  if (!query) {
    const connection = orm.em.getConnection();
    query = <T>(sql: string, params: unknown[]) => connection.execute(sql, params as never[]) as Promise<T>;
    poolQueries.set(orm, query);
  }
  return query;
}
const poolQueries = new WeakMap<MikroORM, Query>();

/** Inside `em`'s transaction, if it has one. */
export function emQuery(em: EntityManager): Query {
  return <T>(sql: string, params: unknown[]) => em.execute(sql, params as never[]) as Promise<T>;
}
