/** Gateway API keys of a project: create (shown once), list, revoke (effective at once on every instance). */
import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { can, type Role } from '../../../shared/permissions.js';
import type { Sql, SqlWork, Work } from '../../events/unit-of-work.js';
import { badRequest, forbidden, notFound, precondition } from '../../errors.js';
import { narrowerOrEqual } from '../../../shared/key-rules.js';
import { notifyInvalidation } from '../gateway/invalidation.js';
import { generateApiKey } from './keys.js';
import type { RowOf } from '../../db/rows.js';
import type { ApiKey } from './entities.js';
import type { Membership } from '../organizations/entities.js';
import type { Project } from '../projects/entities.js';
import type { LimitPeriod } from '../../../shared/limits.js';
import { decimalToNanos, nanosToDecimal } from '../../../shared/money.js';
import { keyScope, limitStatus, spentNow } from '../limits/service.js';

type ApiKeyRow = RowOf<
  typeof ApiKey,
  | 'id' | 'project_id' | 'name' | 'prefix' | 'rpm_limit' | 'created_by' | 'created_at' | 'last_used_at' | 'revoked_at'
  | 'expires_at' | 'enabled' | 'allowed_models' | 'allowed_providers' | 'restricted_by_admin' | 'previous_key_expires_at' | 'rolled_at'
  | 'spend_limit_nanos' | 'spend_limit_period'
> & {
  creator_name: string | null;
  creator_email: string | null;
};

function statusOf(r: ApiKeyRow): 'active' | 'revoked' | 'expired' | 'disabled' {
  if (r.revoked_at) return 'revoked';
  if (r.expires_at && new Date(r.expires_at).getTime() <= Date.now()) return 'expired';
  return r.enabled ? 'active' : 'disabled';
}

function apiKeyView(r: ApiKeyRow, spent?: Map<string, bigint>) {
  const limit = limitStatus(r.spend_limit_nanos, r.spend_limit_period, spent?.get(keyScope(r.id)));
  const graceEnds = r.previous_key_expires_at ? new Date(r.previous_key_expires_at) : null;
  return {
    id: r.id,
    projectId: r.project_id,
    name: r.name,
    prefix: r.prefix,
    rpmLimit: r.rpm_limit,
    createdBy: r.created_by ? { id: r.created_by, name: r.creator_name ?? '', email: r.creator_email ?? '' } : null,
    createdAt: new Date(r.created_at),
    lastUsedAt: r.last_used_at ? new Date(r.last_used_at) : null,
    revokedAt: r.revoked_at ? new Date(r.revoked_at) : null,
    expiresAt: r.expires_at ? new Date(r.expires_at) : null,
    enabled: r.enabled,
    allowedModels: r.allowed_models,
    allowedProviders: r.allowed_providers,
    /** An owner or admin set the restrictions: the key's developer may only tighten them. */
    restrictedByAdmin: r.restricted_by_admin,
    rolledAt: r.rolled_at ? new Date(r.rolled_at) : null,
    /** Until when the secret before the last roll still works (null: it no longer does). */
    previousSecretValidUntil: graceEnds && graceEnds.getTime() > Date.now() ? graceEnds : null,
    status: statusOf(r),
    /** The spend limit as set ({amount, period}; null: none), and its current period: spent, limit, resetsAt (UTC). */
    spendLimit: limit ? { amount: limit.limit, period: limit.period } : null,
    limit: limit?.limit ?? null,
    spent: limit?.spent ?? null,
    resetsAt: limit?.resetsAt ?? null,
  };
}

/** What each limited key's current period spent. */
async function keysSpent(em: Sql, rows: ApiKeyRow[]): Promise<Map<string, bigint>> {
  const limited = rows.filter((r) => r.spend_limit_nanos !== null && r.spend_limit_period !== null);
  return spentNow(em, limited.map((r) => ({ scope: keyScope(r.id), period: r.spend_limit_period! })));
}

const SELECT = `select k.id, k.project_id, k.name, k.prefix, k.rpm_limit, k.created_by, u.name as creator_name, u.email as creator_email,
                       k.created_at, k.last_used_at, k.revoked_at, k.expires_at, k.enabled, k.allowed_models, k.allowed_providers,
                       k.restricted_by_admin, k.previous_key_expires_at, k.rolled_at, k.spend_limit_nanos, k.spend_limit_period
                  from api_key k left join app_user u on u.id = k.created_by`;

export async function listApiKeys(em: EntityManager, projectId: string) {
  const rows = await em.execute<ApiKeyRow[]>(`${SELECT} where k.project_id = ? order by k.revoked_at is not null, k.created_at desc`, [projectId]);
  const spent = await keysSpent(em, rows);
  return rows.map((r) => apiKeyView(r, spent));
}

async function loadApiKey(em: EntityManager, apiKeyId: string) {
  const rows = await em.execute<ApiKeyRow[]>(`${SELECT} where k.id = ?`, [apiKeyId]);
  if (!rows[0]) throw notFound('API key');
  return apiKeyView(rows[0], await keysSpent(em, rows));
}

export interface KeySettings {
  rpmLimit?: number | null;
  expiresAt?: Date | null;
  allowedModels?: string[] | null;
  allowedProviders?: string[] | null;
  /** Nano-dollars per period (UTC); null: no limit. */
  /** Decimal dollars per period (UTC; limit-schemas.ts); null: no limit. */
  spendLimit?: { amount: string; period: LimitPeriod } | null;
}

function futureExpiry(expiresAt: Date | null | undefined): Date | null {
  if (!expiresAt) return null;
  if (expiresAt.getTime() <= Date.now()) throw badRequest('expiresAt must be in the future (to stop a key now, disable or revoke it)');
  return expiresAt;
}

export async function createApiKey(work: Work, input: { orgId: string; projectId: string; name: string; userId: string } & KeySettings) {
  const { em } = work;
  // The organization first, as every membership change locks it (FOR KEY SHARE: balance updates
  // still pass): a removal of the creator running at the same time either commits first, and this
  // creation is refused, or waits and then revokes this key with the others. Two statements: the
  // membership is read with a snapshot taken after the lock is ours.
  await em.execute('select id from organization where id = ? for key share', [input.orgId]);
  const member = await em.execute<RowOf<typeof Membership, 'id'>[]>('select id from membership where org_id = ? and user_id = ?', [input.orgId, input.userId]);
  if (!member[0]) throw notFound('organization');
  const project = await em.execute<RowOf<typeof Project, 'id'>[]>('select id from project where id = ? and org_id = ? for share', [input.projectId, input.orgId]);
  if (!project[0]) throw notFound('project');
  const expiresAt = futureExpiry(input.expiresAt);
  const { key, prefix, hash } = generateApiKey();
  const id = randomUUID();
  const allowedModels = input.allowedModels ?? null;
  const allowedProviders = input.allowedProviders ?? null;
  const spendLimit = limitNanos(input.spendLimit) ?? null;
  await em.execute(
    `insert into api_key (id, org_id, project_id, name, prefix, key_hash, rpm_limit, expires_at, allowed_models, allowed_providers, created_by, created_at, spend_limit_nanos, spend_limit_period)
     values (?, ?, ?, ?, ?, ?, ?, ?, ?::jsonb, ?::jsonb, ?, now(), ?, ?)`,
    [id, input.orgId, input.projectId, input.name, prefix, hash, input.rpmLimit ?? null, expiresAt, json(allowedModels), json(allowedProviders), input.userId, spendLimit?.amount.toString() ?? null, spendLimit?.period ?? null],
  );
  work.audit(input.orgId, 'apiKey.created', { type: 'api_key', id }, null, {
    name: input.name,
    prefix,
    projectId: input.projectId,
    rpmLimit: input.rpmLimit ?? null,
    ...(expiresAt ? { expiresAt: expiresAt.toISOString() } : {}),
    ...(allowedModels ? { allowedModels } : {}),
    ...(allowedProviders ? { allowedProviders } : {}),
    ...(spendLimit ? { spendLimit: limitText(spendLimit) } : {}),
  });
  work.emit(input.orgId, { type: 'apiKey.changed', projectId: input.projectId, apiKeyId: id, change: 'created' });
  const apiKey = await loadApiKey(em, id);
  return { apiKey, key };
}

const limitText = (l: { amount: bigint; period: LimitPeriod } | null) => (l ? { amount: nanosToDecimal(l.amount), period: l.period } : null);
/** A spend limit as given (decimal dollars) in nano-dollars; undefined stays undefined (unchanged). */
const limitNanos = (l: KeySettings['spendLimit']) => (l === undefined ? undefined : l === null ? null : { amount: decimalToNanos(l.amount), period: l.period });

const json = (v: unknown) => (v === null || v === undefined ? null : JSON.stringify(v));

type LockedKey = RowOf<
  typeof ApiKey,
  'org_id' | 'project_id' | 'created_by' | 'revoked_at' | 'name' | 'prefix' | 'rpm_limit' | 'expires_at' | 'enabled' | 'allowed_models' | 'allowed_providers' | 'restricted_by_admin' | 'key_hash'
  | 'spend_limit_nanos' | 'spend_limit_period'
>;

/** The key, locked, and whether the caller may manage it (own key, or apiKey.revokeAny). */
async function lockManagedKey(em: Sql, apiKeyId: string, userId: string, role: Role, verb: string): Promise<LockedKey & { asAdmin: boolean }> {
  const rows = await em.execute<LockedKey[]>(
    `select org_id, project_id, created_by, revoked_at, name, prefix, rpm_limit, expires_at, enabled, allowed_models, allowed_providers, restricted_by_admin, key_hash,
            spend_limit_nanos, spend_limit_period
       from api_key where id = ? for update`,
    [apiKeyId],
  );
  const row = rows[0];
  if (!row) throw notFound('API key');
  const admin = can(role, 'apiKey.revokeAny');
  if (row.created_by !== userId && !admin) throw forbidden(`your role (${role}) may ${verb} only API keys you created; ask an owner or admin`);
  if (row.revoked_at) throw precondition('this API key is revoked; create a new one');
  return { ...row, asAdmin: admin && row.created_by !== userId };
}

export type KeyUpdate = KeySettings & { apiKeyId: string; name?: string; enabled?: boolean };

/**
 * Changes a key's name and settings. Owners and admins change any key; a developer changes their
 * own, and once an owner or admin has restricted it, only towards less (earlier expiry, lower
 * rate, narrower lists, disabled). Effective on every instance before the answer.
 */
export async function updateApiKey(work: Work, input: KeyUpdate & { userId: string; role: Role }) {
  const { em } = work;
  const row = await lockManagedKey(em, input.apiKeyId, input.userId, input.role, 'change');
  const before: Record<string, unknown> = {};
  const after: Record<string, unknown> = {};
  const sets: string[] = [];
  const params: unknown[] = [];
  const change = (column: string, field: string, old: unknown, next: unknown, cast = '') => {
    const same = JSON.stringify(old ?? null) === JSON.stringify(next ?? null);
    if (same) return;
    before[field] = old instanceof Date ? old.toISOString() : (old ?? null);
    after[field] = next instanceof Date ? next.toISOString() : (next ?? null);
    sets.push(`${column} = ?${cast}`);
    params.push(cast === '::jsonb' ? json(next) : (next ?? null));
  };
  const oldExpiry = row.expires_at ? new Date(row.expires_at) : null;
  const restricting =
    input.rpmLimit !== undefined || input.expiresAt !== undefined || input.allowedModels !== undefined || input.allowedProviders !== undefined || input.enabled !== undefined || input.spendLimit !== undefined;
  const oldLimit = row.spend_limit_nanos !== null && row.spend_limit_period !== null ? { amount: BigInt(row.spend_limit_nanos), period: row.spend_limit_period } : null;
  // A developer's own key that an owner or admin restricted: only towards less.
  if (row.restricted_by_admin && !can(input.role, 'apiKey.revokeAny')) {
    const refuse = (what: string) => {
      throw forbidden(`an owner or admin restricted this key: you may tighten its ${what}, not loosen it`);
    };
    if (input.rpmLimit !== undefined && row.rpm_limit !== null && (input.rpmLimit === null || input.rpmLimit > row.rpm_limit)) refuse('rate limit');
    if (input.expiresAt !== undefined && oldExpiry && (input.expiresAt === null || input.expiresAt > oldExpiry)) refuse('expiry');
    if (input.allowedModels !== undefined && !narrowerOrEqual(row.allowed_models, input.allowedModels)) refuse('allowed models');
    if (input.allowedProviders !== undefined && !narrowerOrEqual(row.allowed_providers, input.allowedProviders)) refuse('allowed providers');
    if (input.enabled === true && !row.enabled) refuse('enabled state (ask an owner or admin to enable it again)');
    // Tighter: a limit where there was none, or a lower amount over the same period.
    const wanted = limitNanos(input.spendLimit);
    if (wanted !== undefined && oldLimit && (wanted === null || wanted.period !== oldLimit.period || wanted.amount > oldLimit.amount)) refuse('spend limit (a lower amount over the same period)');
  }
  if (input.name !== undefined) change('name', 'name', row.name, input.name);
  if (input.rpmLimit !== undefined) change('rpm_limit', 'rpmLimit', row.rpm_limit, input.rpmLimit);
  if (input.expiresAt !== undefined) {
    const next = input.expiresAt === null ? null : futureExpiry(input.expiresAt);
    if ((oldExpiry?.getTime() ?? null) !== (next?.getTime() ?? null)) change('expires_at', 'expiresAt', oldExpiry, next);
  }
  if (input.allowedModels !== undefined) change('allowed_models', 'allowedModels', row.allowed_models, input.allowedModels, '::jsonb');
  if (input.allowedProviders !== undefined) change('allowed_providers', 'allowedProviders', row.allowed_providers, input.allowedProviders, '::jsonb');
  if (input.enabled !== undefined) change('enabled', 'enabled', row.enabled, input.enabled);
  if (input.spendLimit !== undefined) {
    const next = limitNanos(input.spendLimit)!;
    if (JSON.stringify(limitText(oldLimit)) !== JSON.stringify(limitText(next))) {
      before.spendLimit = limitText(oldLimit);
      after.spendLimit = limitText(next);
      sets.push('spend_limit_nanos = ?', 'spend_limit_period = ?');
      params.push(next?.amount.toString() ?? null, next?.period ?? null);
    }
  }
  if (sets.length > 0) {
    if (row.asAdmin && restricting && !row.restricted_by_admin) sets.push('restricted_by_admin = true');
    await em.execute(`update api_key set ${sets.join(', ')} where id = ?`, [...params, input.apiKeyId]);
    await notifyInvalidation(work, { kind: 'apiKey', apiKeyId: input.apiKeyId });
    work.audit(row.org_id, 'apiKey.updated', { type: 'api_key', id: input.apiKeyId }, { name: row.name, prefix: row.prefix, ...before }, after);
    work.emit(row.org_id, { type: 'apiKey.changed', projectId: row.project_id, apiKeyId: input.apiKeyId, change: 'updated' });
  }
  return loadApiKey(em, input.apiKeyId);
}

/**
 * A new secret for the same key (id, settings, usage history). The old secret keeps working for
 * `graceSeconds` (0: it stops at once; at most 24 h); rolling again ends an earlier grace at once.
 */
export async function rollApiKey(work: Work, input: { apiKeyId: string; graceSeconds?: number; userId: string; role: Role }) {
  const { em } = work;
  const row = await lockManagedKey(em, input.apiKeyId, input.userId, input.role, 'roll');
  const grace = input.graceSeconds ?? 0;
  const { key, prefix, hash } = generateApiKey();
  await em.execute(
    `update api_key set key_hash = ?, prefix = ?, rolled_at = now(),
            previous_key_hash = case when ?::int > 0 then key_hash else null end,
            previous_key_expires_at = case when ?::int > 0 then now() + make_interval(secs => ?::int) else null end
      where id = ?`,
    [hash, prefix, grace, grace, grace, input.apiKeyId],
  );
  await notifyInvalidation(work, { kind: 'apiKey', apiKeyId: input.apiKeyId });
  work.audit(row.org_id, 'apiKey.rolled', { type: 'api_key', id: input.apiKeyId }, { prefix: row.prefix }, { prefix, graceSeconds: grace });
  work.emit(row.org_id, { type: 'apiKey.changed', projectId: row.project_id, apiKeyId: input.apiKeyId, change: 'rolled' });
  return { apiKey: await loadApiKey(em, input.apiKeyId), key };
}

/** Developers revoke the keys they created; owners and admins revoke any. Revoking twice is a no-op. */
export async function revokeApiKey(work: Work, input: { apiKeyId: string; userId: string; role: Role }) {
  const { em } = work;
  const rows = await em.execute<RowOf<typeof ApiKey, 'org_id' | 'project_id' | 'created_by' | 'revoked_at' | 'name' | 'prefix'>[]>(
    'select org_id, project_id, created_by, revoked_at, name, prefix from api_key where id = ? for update',
    [input.apiKeyId],
  );
  const row = rows[0];
  if (!row) throw notFound('API key');
  if (row.created_by !== input.userId && !can(input.role, 'apiKey.revokeAny')) {
    throw forbidden(`your role (${input.role}) may revoke only API keys you created; ask an owner or admin`);
  }
  if (!row.revoked_at) {
    await em.execute('update api_key set revoked_at = now(), revoked_by = ? where id = ?', [input.userId, input.apiKeyId]);
    await notifyInvalidation(work, { kind: 'apiKey', apiKeyId: input.apiKeyId });
    work.audit(row.org_id, 'apiKey.revoked', { type: 'api_key', id: input.apiKeyId }, { name: row.name, prefix: row.prefix }, null);
    work.emit(row.org_id, { type: 'apiKey.changed', projectId: row.project_id, apiKeyId: input.apiKeyId, change: 'revoked' });
  }
  return loadApiKey(em, input.apiKeyId);
}

/** Active (not revoked) API keys per creator in an organization: what removing each member would affect. */
export async function activeKeysByCreator(em: Sql, orgId: string): Promise<Map<string, number>> {
  const rows = await em.execute<{ created_by: string; n: string }[]>(
    'select created_by, count(*) as n from api_key where org_id = ? and created_by is not null and revoked_at is null group by created_by',
    [orgId],
  );
  return new Map(rows.map((r) => [r.created_by, Number(r.n)]));
}

/**
 * Revokes every active API key `userId` created in the organization (they are leaving it), in the
 * caller's unit of work: like apiKey.revoke, each key is invalidated on every instance's gateway
 * before the command answers. Returns the revoked keys' ids.
 */
export async function revokeKeysCreatedBy(work: SqlWork, orgId: string, userId: string, revokedBy: string | null): Promise<string[]> {
  const rows = await work.em.execute<RowOf<typeof ApiKey, 'id' | 'project_id' | 'name' | 'prefix'>[]>(
    `update api_key set revoked_at = now(), revoked_by = ?
      where id in (select id from api_key where org_id = ? and created_by = ? and revoked_at is null order by id for update)
      returning id, project_id, name, prefix`,
    [revokedBy, orgId, userId],
  );
  for (const row of rows) {
    await notifyInvalidation(work, { kind: 'apiKey', apiKeyId: row.id });
    work.audit(orgId, 'apiKey.revoked', { type: 'api_key', id: row.id }, { name: row.name, prefix: row.prefix, createdBy: userId }, { reason: 'creator left the organization' });
    work.emit(orgId, { type: 'apiKey.changed', projectId: row.project_id, apiKeyId: row.id, change: 'revoked' });
  }
  return rows.map((r) => r.id);
}

/**
 * Gives `fromUserId`'s active API keys to `toUserId` (who must stay a member: the caller checks),
 * so they keep working after `fromUserId` leaves; their calls count against the new owner's budget.
 */
export async function transferKeysCreatedBy(work: SqlWork, orgId: string, fromUserId: string, toUserId: string): Promise<string[]> {
  const rows = await work.em.execute<RowOf<typeof ApiKey, 'id' | 'project_id' | 'name' | 'prefix'>[]>(
    `update api_key set created_by = ?
      where id in (select id from api_key where org_id = ? and created_by = ? and revoked_at is null order by id for update)
      returning id, project_id, name, prefix`,
    [toUserId, orgId, fromUserId],
  );
  for (const row of rows) {
    // The key's member budget follows its owner (spend limits): every gateway reads the key again.
    await notifyInvalidation(work, { kind: 'apiKey', apiKeyId: row.id });
    work.audit(orgId, 'apiKey.transferred', { type: 'api_key', id: row.id }, { name: row.name, prefix: row.prefix, createdBy: fromUserId }, { createdBy: toUserId });
    work.emit(orgId, { type: 'apiKey.changed', projectId: row.project_id, apiKeyId: row.id, change: 'transferred' });
  }
  return rows.map((r) => r.id);
}
