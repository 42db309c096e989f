/**
 * One PostgreSQL per test run: embedded (a throwaway cluster) unless DATABASE_URL is given.
 * Migrations run once into a template database; each test file clones it (CREATE DATABASE ... TEMPLATE).
 */
import type { TestProject } from 'vitest/node';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../../server/db/embedded.js';
import { openDatabase, migrate } from '../../server/db/orm.js';

declare module 'vitest' {
  export interface ProvidedContext {
    pgAdminUrl: string;
    templateDb: string;
  }
}

const TEMPLATE = 'gateway_test_template';
let embedded: EmbeddedDatabase | null = null;
let dir: string | null = null;

export async function setup(project: TestProject) {
  try {
    await prepareDatabase(project);
  } catch (err) {
    // vitest reports a failed global setup as "no test files" and can exit 0: fail loudly instead.
    console.error('test database setup failed:', err);
    process.exit(1);
  }
}

async function prepareDatabase(project: TestProject) {
  let adminUrl = process.env.DATABASE_URL;
  if (!adminUrl) {
    dir = mkdtempSync(join(tmpdir(), 'gateway-test-pg-'));
    const port = 20000 + Math.floor(Math.random() * 20000);
    embedded = await startEmbeddedPostgres({ dataDir: dir, port, persistent: false });
    adminUrl = embedded.url;
  }
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`drop database if exists ${TEMPLATE} with (force)`);
  await admin.query(`create database ${TEMPLATE}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${TEMPLATE}`;
  const orm = await openDatabase(url.toString());
  await migrate(orm);
  await orm.close();
  project.provide('pgAdminUrl', adminUrl);
  project.provide('templateDb', TEMPLATE);
}

export async function teardown() {
  await embedded?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
}
