/**
 * The entities are the schema: the migrated test database must be exactly what the entities
 * describe (the same check as `npm run db:check`), so an entity and a migration cannot drift apart.
 * When this fails it prints the SQL that would make the database match the entities: change the
 * entity, or run `npm run migration:create -- <Name>` and review the migration it writes.
 */
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import pg from 'pg';
import { randomBytes } from 'node:crypto';
import type { MikroORM } from '@mikro-orm/postgresql';
import { createTestDatabase } from '../helpers/db.js';
import { openDatabase } from '../../server/db/orm.js';
import { schemaDrift } from '../../server/db/check.js';

let orm: MikroORM;
let emptyName: string;

/** A database with no tables: the entities' own schema is created there to compare index definitions. */
async function emptyDatabase(): Promise<MikroORM> {
  emptyName = `gw_test_empty_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: inject('pgAdminUrl') });
  await admin.connect();
  await admin.query(`create database ${emptyName}`);
  await admin.end();
  const url = new URL(inject('pgAdminUrl'));
  url.pathname = `/${emptyName}`;
  return openDatabase(url.toString(), { pool: { min: 0, max: 2 } });
}

const drift = async () => {
  const empty = await emptyDatabase();
  try {
    return await schemaDrift(orm, empty);
  } finally {
    await empty.close(true);
    const admin = new pg.Client({ connectionString: inject('pgAdminUrl') });
    await admin.connect();
    await admin.query(`drop database if exists ${emptyName} with (force)`);
    await admin.end();
  }
};

beforeAll(async () => {
  orm = await openDatabase(await createTestDatabase(), { pool: { min: 0, max: 2 } });
});

afterAll(async () => {
  await orm?.close(true);
});

it('has the schema the entities describe (npm run db:check)', async () => {
  const found = await drift();
  expect(found, `entities and migrations differ. SQL that would make the migrated database match the entities:\n\n${found}\n`).toBe('');
});

it('sees a missing or changed partial unique index, foreign key, check constraint or column length', async () => {
  const em = orm.em.fork();
  await em.execute(`drop index "credit_ledger_refund_unique"`);
  await em.execute(`drop index "credit_ledger_payment_intent_unique"`);
  await em.execute(`create unique index "credit_ledger_payment_intent_unique" on "credit_ledger" ("payment_intent_id") where "payment_intent_id" is not null`);
  await em.execute(`alter table "session" drop constraint "session_user_id_fkey"`);
  await em.execute(`alter table "project" drop constraint "project_mode_check"`);
  await em.execute(`alter table "credit_ledger" alter column "description" type varchar(255)`);
  const found = await drift();
  expect(found).toContain('"credit_ledger_refund_unique"');
  expect(found).toContain('index "credit_ledger_payment_intent_unique" differs');
  expect(found).toContain('"session_user_id_fkey"');
  expect(found).toContain('"project_mode_check"');
  expect(found).toMatch(/"description" type varchar\(500\)/);
});
