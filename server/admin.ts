/**
 * Operator commands (`npm run admin -- <command> ...`): how "contact support to raise the limit" is done.
 * Uses DATABASE_URL, else the embedded PostgreSQL (the running server's, or started here if it is down).
 */
import pg from 'pg';
import { loadConfig } from './config.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from './db/embedded.js';
import { migrate, openDatabase } from './db/orm.js';

const USAGE = `usage: npm run admin -- <command>
  user:org-limit <email> <n|default>      organizations the user may own
  org:project-limit <orgId> <n|default>   projects the organization may have
  user:show <email>                       the user's organizations and roles`;

function parseLimit(value: string | undefined): number | null {
  if (value === 'default') return null;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 100_000) throw new Error(`limit must be a whole number or "default", got ${value}`);
  return n;
}

async function databaseUrl(): Promise<{ url: string; embedded: EmbeddedDatabase | null }> {
  const config = loadConfig();
  if (config.databaseUrl) return { url: config.databaseUrl, embedded: null };
  const url = `postgres://postgres:postgres@127.0.0.1:${config.embeddedPgPort}/gateway`;
  const probe = new pg.Client({ connectionString: url });
  try {
    await probe.connect();
    await probe.end();
    return { url, embedded: null };
  } catch {
    const embedded = await startEmbeddedPostgres({ dataDir: config.dataDir, port: config.embeddedPgPort });
    return { url: embedded.url, embedded };
  }
}

async function main(args: string[]): Promise<number> {
  const [command, target, value] = args;
  if (!command || !target) {
    console.error(USAGE);
    return 2;
  }
  const { url, embedded } = await databaseUrl();
  const orm = await openDatabase(url);
  try {
    await migrate(orm);
    const em = orm.em.fork();
    switch (command) {
      case 'user:org-limit': {
        const rows = await em.execute('update app_user set organization_limit = ? where email = ? returning id', [parseLimit(value), target.toLowerCase()]);
        if (rows.length === 0) throw new Error(`no user with email ${target}`);
        console.log(`${target}: organization limit ${value}`);
        return 0;
      }
      case 'org:project-limit': {
        const rows = await em.execute('update organization set project_limit = ? where id = ? returning id', [parseLimit(value), target]);
        if (rows.length === 0) throw new Error(`no organization ${target}`);
        console.log(`${target}: project limit ${value}`);
        return 0;
      }
      case 'user:show': {
        const rows = await em.execute(
          `select o.id, o.name, m.role, o.plan from app_user u join membership m on m.user_id = u.id join organization o on o.id = m.org_id where u.email = ? order by o.name`,
          [target.toLowerCase()],
        );
        console.table(rows);
        return 0;
      }
      default:
        console.error(USAGE);
        return 2;
    }
  } finally {
    await orm.close();
    await embedded?.stop();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
