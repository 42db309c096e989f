/**
 * The benchmark's world: a throwaway PostgreSQL database, the real server (buildApp) on a free
 * port, and organizations, members and sessions written straight to the database (no argon2
 * sign-ups: 2,000 of those would take minutes and measure nothing we care about here).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { buildApp, type BuiltApp } from '../../server/app.js';
import { loadConfig } from '../../server/config.js';
import { startEmbeddedPostgres } from '../../server/db/embedded.js';
import { createSession } from '../../server/auth/session.js';
import { runCommand } from '../../server/events/unit-of-work.js';
import { createOrganization } from '../../server/modules/organizations/service.js';
import type { Subscriber } from './clients.js';

export interface BenchOrg {
  id: string;
  projectId: string;
  ownerId: string;
}

/** A fresh database on DATABASE_URL's server, or an embedded PostgreSQL in a temp dir. */
export async function startDatabase(): Promise<{ url: string; stop(): Promise<void> }> {
  const given = process.env.DATABASE_URL;
  if (given) {
    const name = `live_fanout_${randomBytes(4).toString('hex')}`;
    const admin = new pg.Client({ connectionString: given });
    await admin.connect();
    await admin.query(`create database ${name}`);
    await admin.end();
    const url = new URL(given);
    url.pathname = `/${name}`;
    return {
      url: url.toString(),
      async stop() {
        const c = new pg.Client({ connectionString: given });
        await c.connect();
        await c.query(`drop database if exists ${name} with (force)`);
        await c.end();
      },
    };
  }
  const dir = mkdtempSync(join(tmpdir(), 'live-fanout-pg-'));
  const db = await startEmbeddedPostgres({ dataDir: dir, port: 20000 + Math.floor(Math.random() * 20000), persistent: false });
  return {
    url: db.url,
    async stop() {
      await db.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function startServer(databaseUrl: string): Promise<{ built: BuiltApp; url: string; stop(): Promise<void> }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'live-fanout-data-'));
  const config = loadConfig({
    NODE_ENV: 'development',
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    APP_SECRET: randomBytes(32).toString('hex'),
    // The server's default logging, as `npm start` runs it (BENCH_LOG sets another level).
    LOG_LEVEL: process.env.BENCH_LOG ?? 'info',
  });
  const built = await buildApp({ config, databaseUrl, jobs: false });
  await built.app.listen({ port: 0, host: '127.0.0.1' });
  const address = built.app.server.address();
  const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  built.services.appUrl = url;
  return {
    built,
    url,
    async stop() {
      await built.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * `orgs` organizations (each made by the real createOrganization, so it has its Default Project
 * and owner), each with `members - 1` developers besides the owner, and one session per user.
 */
export async function seed(built: BuiltApp, databaseUrl: string, orgs: number, members: number): Promise<{ orgs: BenchOrg[]; subscribers: Subscriber[] }> {
  const userIds = Array.from({ length: orgs * members }, () => randomUUID());
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  // Accounts that cannot sign in (no password hash); the benchmark uses the sessions made below.
  await db.query(
    `insert into app_user (id, email, name, password_hash, created_at)
     select id, 'bench-' || n || '@example.com', 'Bench User ' || n, 'no-password', now()
       from unnest($1::uuid[]) with ordinality as u(id, n)`,
    [userIds],
  );
  const deps = built.services;
  const created: BenchOrg[] = [];
  for (let o = 0; o < orgs; o++) {
    const ownerId = userIds[o * members]!;
    const result = await runCommand(deps, ownerId, (work) => createOrganization(work, ownerId, { name: `Bench Org ${o}` }));
    created.push({ id: result.organization.id, projectId: result.defaultProject.id, ownerId });
  }
  const memberOrg: string[] = [];
  const memberUser: string[] = [];
  for (let o = 0; o < orgs; o++) {
    for (let m = 1; m < members; m++) {
      memberOrg.push(created[o]!.id);
      memberUser.push(userIds[o * members + m]!);
    }
  }
  await db.query(
    `insert into membership (id, org_id, user_id, role, created_at)
     select gen_random_uuid(), o, u, 'developer', now() from unnest($1::uuid[], $2::uuid[]) as t(o, u)`,
    [memberOrg, memberUser],
  );
  await db.end();

  const subscribers: Subscriber[] = new Array(userIds.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: 10 }, async () => {
      const em = built.orm.em.fork();
      while (next < userIds.length) {
        const i = next++;
        const { token } = await createSession(em, userIds[i]!, 'live-fanout bench');
        // A flat string: a concatenated one is flattened (a new string) when first sent to the
        // client process, which would count against the server's memory per subscriber.
        subscribers[i] = { cookie: Buffer.from(`session=${token}`).toString(), orgId: created[Math.floor(i / members)]!.id };
        em.clear();
      }
    }),
  );
  return { orgs: created, subscribers };
}
