import { MikroORM, defineConfig, type Options } from '@mikro-orm/postgresql';
import { Migrator } from '@mikro-orm/migrations';
import { entities } from './entities.js';
import { migrationsList } from '../../migrations/index.js';

export function ormConfig(clientUrl: string, overrides: Partial<Options> = {}): Options {
  return defineConfig({
    clientUrl,
    entities,
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

export async function migrate(orm: MikroORM): Promise<void> {
  await orm.getMigrator().up();
}
