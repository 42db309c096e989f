/**
 * A throwaway database for the schema tools (`npm run db:check`, `npm run migration:create`):
 * created on DATABASE_URL's server (else the embedded PostgreSQL, the running server's or started
 * here, as `npm run admin` finds it), migrated to the newest migration, dropped afterwards.
 */
import pg from 'pg';
import { randomBytes } from 'node:crypto';
import type { MikroORM, Options } from '@mikro-orm/postgresql';
import { loadConfig } from '../config.js';
import { migrate, openDatabase, ormConfig } from './orm.js';

/** The server to create scratch databases on, and how to stop it if it was started here. */
export async function schemaToolServer(): Promise<{ url: string; stop: () => Promise<void> }> {
  const config = loadConfig();
  if (config.databaseUrl) return { url: config.databaseUrl, stop: async () => {} };
  const url = `postgres://postgres:postgres@127.0.0.1:${config.embeddedPgPort}/gateway`;
  const probe = new pg.Client({ connectionString: url });
  try {
    await probe.connect();
    await probe.end();
    return { url, stop: async () => {} };
  } catch {
    const { startEmbeddedPostgres } = await import('./embedded.js');
    const embedded = await startEmbeddedPostgres({ dataDir: config.dataDir, port: config.embeddedPgPort });
    return { url: embedded.url, stop: () => embedded.stop() };
  }
}

/** Runs `fn` with an ORM on a freshly created and migrated database of `serverUrl`'s server, then drops it. */
export function withMigratedScratchDatabase<T>(serverUrl: string, fn: (orm: MikroORM) => Promise<T>, overrides: Partial<Options> = {}): Promise<T> {
  return withScratchDatabase(serverUrl, async (orm) => {
    await migrate(orm);
    return fn(orm);
  }, overrides);
}

/** Runs `fn` with an ORM on a freshly created, empty database of `serverUrl`'s server, then drops it. */
export async function withScratchDatabase<T>(serverUrl: string, fn: (orm: MikroORM) => Promise<T>, overrides: Partial<Options> = {}): Promise<T> {
  const name = `gw_scratch_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: serverUrl, application_name: 'schema-tools' });
  await admin.connect();
  try {
    await admin.query(`create database ${name}`);
    const url = new URL(serverUrl);
    url.pathname = `/${name}`;
    const base = ormConfig(url.toString());
    const orm = await openDatabase(url.toString(), { pool: { min: 0, max: 2 }, ...overrides, migrations: { ...base.migrations, silent: true, ...overrides.migrations } });
    try {
      return await fn(orm);
    } finally {
      await orm.close(true);
    }
  } finally {
    await admin.query(`drop database if exists ${name} with (force)`).catch((err: unknown) => console.error(`could not drop scratch database ${name}:`, err));
    await admin.end();
  }
}
