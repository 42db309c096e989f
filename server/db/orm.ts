import pg from 'pg';
import { MikroORM, UnderscoreNamingStrategy, defineConfig, type Options } from '@mikro-orm/postgresql';
import { Migrator } from '@mikro-orm/migrations';
import { entities } from './entities.js';
import { migrationsList } from '../../migrations/index.js';

/**
 * MikroORM's names, except foreign keys, which get PostgreSQL's own (`<table>_<column>_fkey`), the
 * name an inline `references` in a hand-written migration gets too.
 */
export class NamingStrategy extends UnderscoreNamingStrategy {
  override indexName(tableName: string, columns: string[], type: 'primary' | 'foreign' | 'unique' | 'index' | 'sequence' | 'check'): string {
    return super.indexName(tableName, columns, type === 'foreign' ? ('fkey' as 'foreign') : type);
  }

  /** `Migration20261201093000AddFoo`, the project's style (see migrations/). */
  override classToMigrationName(timestamp: string, customMigrationName?: string): string {
    return migrationName(timestamp, customMigrationName);
  }
}

export function migrationName(timestamp: string, name?: string): string {
  const words = (name ?? '').split(/[^A-Za-z0-9]+/).filter(Boolean);
  return `Migration${timestamp}${words.map((w) => w[0]!.toUpperCase() + w.slice(1)).join('')}`;
}

export function ormConfig(clientUrl: string, overrides: Partial<Options> = {}): Options {
  return defineConfig({
    clientUrl,
    entities,
    namingStrategy: NamingStrategy,
    extensions: [Migrator],
    discovery: { warnWhenNoEntities: false },
    migrations: { migrationsList, transactional: true, allOrNothing: true, snapshot: false },
    pool: { min: 0, max: 20 },
    // Each request forks its own EntityManager; the global one must not be used by accident.
    allowGlobalContext: false,
    debug: false,
    ...overrides,
  });
}

export async function openDatabase(clientUrl: string, overrides: Partial<Options> = {}): Promise<MikroORM> {
  return MikroORM.init(ormConfig(clientUrl, overrides));
}

/** Any constant shared by every instance: the advisory lock instances take turns migrating under. */
const MIGRATION_LOCK = 7_241_500_001;

/**
 * Runs pending migrations. Instances starting together (cluster workers, a rolling deploy) take
 * turns under a session advisory lock: the first migrates, the others then find nothing to do.
 */
export async function migrate(orm: MikroORM): Promise<void> {
  const lock = new pg.Client({ connectionString: orm.config.get('clientUrl'), application_name: 'migrations-lock' });
  // Losing it mid-migration fails the migration (its transaction rolls back), not the process.
  lock.on('error', () => {});
  await lock.connect();
  try {
    await lock.query('select pg_advisory_lock($1)', [MIGRATION_LOCK]);
    await orm.getMigrator().up();
  } finally {
    // Ending the session releases the lock.
    await lock.end().catch(() => {});
  }
}
