/**
 * `npm run db:check`: the entities are the schema. Migrates a scratch database from scratch, asks
 * MikroORM for the SQL that would turn it into what the entities describe (plus the indexes whose
 * definitions differ from a database created from the entities), and exits non-zero printing it
 * when it is not empty. Uses DATABASE_URL's server, else the embedded PostgreSQL
 * (the running server's, or started here if it is down); the scratch database is dropped after.
 */
import { pathToFileURL } from 'node:url';
import type { MikroORM } from '@mikro-orm/postgresql';
import { schemaToolServer, withMigratedScratchDatabase, withScratchDatabase } from './scratch.js';

/** The SQL that would make the database `orm` is connected to match the entities ('' when none). */
export async function schemaDiffSql(orm: MikroORM): Promise<string> {
  const sql = await orm.getSchemaGenerator().getUpdateSchemaSQL({ wrap: false, safe: false, dropTables: true });
  return sql.trim();
}

/** Every index of the entities' tables as PostgreSQL prints it (`ON ONLY` of a partitioned table dropped), by name. */
async function indexDefinitions(orm: MikroORM): Promise<Map<string, string>> {
  const tables = Object.values(orm.getMetadata().getAll()).map((meta) => meta.tableName);
  const rows = await orm.em.fork().execute<{ name: string; def: string }[]>(
    `select indexname as name, indexdef as def from pg_indexes where schemaname = current_schema() and tablename in (?)`,
    [tables],
  );
  return new Map(rows.map((r) => [r.name, r.def.replace(' ON ONLY ', ' ON ')]));
}

/**
 * MikroORM compares an index declared with `expression` (partial, descending) by name only. This
 * compares every index's definition, as PostgreSQL normalizes it, between the migrated database and
 * one created from the entities (`createSchema` on `empty`, an empty database).
 */
export async function indexDefinitionDrift(migrated: MikroORM, empty: MikroORM): Promise<string> {
  await empty.getSchemaGenerator().createSchema();
  const [have, want] = await Promise.all([indexDefinitions(migrated), indexDefinitions(empty)]);
  const lines: string[] = [];
  for (const [name, def] of want) {
    const actual = have.get(name);
    if (actual !== undefined && actual !== def) lines.push(`-- index "${name}" differs:\n--   migrations: ${actual}\n--   entities:   ${def}`);
  }
  return lines.join('\n');
}

/** Everything that differs between the migrated database `migrated` and the entities ('' when none); `empty` is an empty scratch database. */
export async function schemaDrift(migrated: MikroORM, empty: MikroORM): Promise<string> {
  const sql = await schemaDiffSql(migrated);
  const indexes = await indexDefinitionDrift(migrated, empty);
  return [sql, indexes].filter(Boolean).join('\n\n');
}

async function main(): Promise<number> {
  const server = await schemaToolServer();
  try {
    const drift = await withMigratedScratchDatabase(server.url, (migrated) => withScratchDatabase(server.url, (empty) => schemaDrift(migrated, empty)));
    if (!drift) {
      console.log('db:check: the migrated schema matches the entities');
      return 0;
    }
    console.error('db:check: the migrated schema differs from the entities. SQL that would make it match (and indexes that differ):\n');
    console.error(drift);
    console.error('\nChange the entity, or write the migration (`npm run migration:create`), until this is empty.');
    return 1;
  } finally {
    await server.stop();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error('db:check failed:', err);
      process.exit(2);
    },
  );
}
