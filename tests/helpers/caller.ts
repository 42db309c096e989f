/**
 * Service rules without HTTP: the app router called in-process through tRPC's createCaller with an
 * inner context (createContextInner), as tRPC's own testing examples do. One set of services
 * (createServices, on the file's own test database) per test file; a caller per user. Every middleware still runs
 * (membership, the permission matrix, domain errors mapped to tRPC codes); only the HTTP edge
 * (cookies, origin headers, status codes, error formatting) is skipped: test that over HTTP.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { TRPCError } from '@trpc/server';
import { createCallerFactory } from '../../server/trpc/init.js';
import { appRouter } from '../../server/trpc/router.js';
import { createContextInner } from '../../server/trpc/context.js';
import { createServices, type Services } from '../../server/services.js';
import { loadConfig } from '../../server/config.js';
import { User, type UserEntity } from '../../server/modules/auth/entities.js';
import type { Role } from '../../shared/permissions.js';
import { createTestDatabase } from './db.js';
import { uniqueEmail } from './client.js';

const createCaller = createCallerFactory(appRouter);
export type AppCaller = ReturnType<typeof createCaller>;
type InnerOptions = Parameters<typeof createContextInner>[0];

export interface CallerUser {
  user: UserEntity;
  email: string;
  /** The router, called as this user. */
  call: AppCaller;
}

export interface CallerApp {
  services: Services;
  /** A caller as `user` (null: signed out), with any other context fields overridden. */
  callerFor(user: UserEntity | null, opts?: Omit<InnerOptions, 'services' | 'user'>): AppCaller;
  /** A new account, signed up through auth.signUp, and a caller as them. */
  signUp(name?: string, email?: string): Promise<CallerUser>;
  /** A new organization owned by `owner`, with each of `members` joined (invited and accepted) in their role. */
  orgWith(owner: CallerUser, members?: [CallerUser, Role][], name?: string): Promise<{ id: string; name: string; version: number; defaultProjectId: string }>;
  /** Invites `who` to `orgId` as `role` (on `by`'s behalf) and accepts as them. */
  join(by: CallerUser, orgId: string, who: CallerUser, role: Role): Promise<void>;
  /** Lets `user` own more organizations than the Free plan's 3 (the operator override). */
  raiseOrganizationLimit(user: CallerUser, limit?: number): Promise<void>;
  /** Raw SQL on the file's database, for checking state. */
  sql<T = Record<string, unknown>>(query: string, params?: unknown[]): Promise<T[]>;
  close(): Promise<void>;
}

let signUps = 0;

const silent = { info() {}, warn() {}, error() {} };

/**
 * Builds the file's services through the composition root (no HTTP server, no gateway) on a fresh
 * test database; call once in beforeAll and close in afterAll.
 */
export async function startCallerApp(): Promise<CallerApp> {
  const databaseUrl = await createTestDatabase();
  const config = loadConfig({
    NODE_ENV: 'test',
    PORT: '0',
    HOST: '127.0.0.1',
    APP_URL: 'http://app.test',
    DATA_DIR: mkdtempSync(joinPath(tmpdir(), 'gateway-caller-data-')),
    APP_SECRET: 'test-secret-test-secret-test-secret-0123456789',
  });
  const root = await createServices(config, { databaseUrl, log: silent, gateway: false, presence: false });
  const services = root.services;
  const callerFor: CallerApp['callerFor'] = (user, opts = {}) => createCaller(createContextInner({ ...opts, services, user }));
  const sql: CallerApp['sql'] = (query, params = []) => services.orm.em.fork().execute(query, params);

  const signUp: CallerApp['signUp'] = async (name = 'Test User', email = uniqueEmail()) => {
    // A distinct address per sign-up: the per-IP sign-up limit is not what these tests are about.
    const n = ++signUps;
    const anonymous = callerFor(null, { ip: `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}` });
    const { user: view } = await anonymous.auth.signUp({ email, password: 'correct horse battery', name });
    const user = await services.orm.em.fork().findOneOrFail(User, { id: view.id });
    return { user, email: view.email, call: callerFor(user) };
  };

  const join: CallerApp['join'] = async (by, orgId, who, role) => {
    const { inviteUrl } = await by.call.team.invite({ orgId, email: who.email, role });
    await who.call.team.acceptInvitation({ token: inviteUrl.slice(inviteUrl.lastIndexOf('/') + 1) });
  };

  let orgs = 0;
  const orgWith: CallerApp['orgWith'] = async (owner, members = [], name = `Caller Org ${++orgs}`) => {
    const { organization, defaultProject } = await owner.call.organization.create({ name });
    for (const [who, role] of members) await join(owner, organization.id, who, role);
    return { id: organization.id, name: organization.name, version: organization.version, defaultProjectId: defaultProject.id };
  };

  const raiseOrganizationLimit: CallerApp['raiseOrganizationLimit'] = async (who, limit = 1000) => {
    await sql('update app_user set organization_limit = ? where id = ?', [limit, who.user.id]);
  };

  return { services, callerFor, signUp, orgWith, join, raiseOrganizationLimit, sql, close: () => root.close() };
}

export type Outcome<T> = { ok: true; data: T } | { ok: false; code: string; message: string };

/** A call's result or its refusal as data: the tRPC code and message (anything else is rethrown). */
export async function outcome<T>(promise: Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, data: await promise };
  } catch (err) {
    if (err instanceof TRPCError) return { ok: false, code: err.code, message: err.message };
    throw err;
  }
}

/** 'ok', or the tRPC code a call was refused with. */
export async function codeOf(promise: Promise<unknown>): Promise<string> {
  const o = await outcome(promise);
  return o.ok ? 'ok' : o.code;
}
