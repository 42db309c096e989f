/** Gateway API keys of a project: create (shown once), list, revoke (effective at once on every instance). */
import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { can, type Role } from '../../../shared/permissions.js';
import type { Sql, SqlWork, Work } from '../../events/unit-of-work.js';
import { forbidden, notFound } from '../../errors.js';
import { notifyInvalidation } from '../gateway/invalidation.js';
import { generateApiKey } from './keys.js';
import type { RowOf } from '../../db/rows.js';
import type { ApiKey } from './entities.js';
import type { Membership } from '../organizations/entities.js';
import type { Project } from '../projects/entities.js';

type ApiKeyRow = RowOf<typeof ApiKey, 'id' | 'project_id' | 'name' | 'prefix' | 'rpm_limit' | 'created_by' | 'created_at' | 'last_used_at' | 'revoked_at'> & {
  creator_name: string | null;
  creator_email: string | null;
};

function apiKeyView(r: ApiKeyRow) {
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
    status: r.revoked_at ? ('revoked' as const) : ('active' as const),
  };
}

const SELECT = `select k.id, k.project_id, k.name, k.prefix, k.rpm_limit, k.created_by, u.name as creator_name, u.email as creator_email,
                       k.created_at, k.last_used_at, k.revoked_at
                  from api_key k left join app_user u on u.id = k.created_by`;

export async function listApiKeys(em: EntityManager, projectId: string) {
  const rows = await em.execute<ApiKeyRow[]>(`${SELECT} where k.project_id = ? order by k.revoked_at is not null, k.created_at desc`, [projectId]);
  return rows.map(apiKeyView);
}

async function loadApiKey(em: EntityManager, apiKeyId: string) {
  const rows = await em.execute<ApiKeyRow[]>(`${SELECT} where k.id = ?`, [apiKeyId]);
  if (!rows[0]) throw notFound('API key');
  return apiKeyView(rows[0]);
}

export async function createApiKey(work: Work, input: { orgId: string; projectId: string; name: string; rpmLimit?: number | null; userId: string }) {
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
  const { key, prefix, hash } = generateApiKey();
  const id = randomUUID();
  await em.execute(
    `insert into api_key (id, org_id, project_id, name, prefix, key_hash, rpm_limit, created_by, created_at)
     values (?, ?, ?, ?, ?, ?, ?, ?, now())`,
    [id, input.orgId, input.projectId, input.name, prefix, hash, input.rpmLimit ?? null, input.userId],
  );
  work.audit(input.orgId, 'apiKey.created', { type: 'api_key', id }, null, { name: input.name, prefix, projectId: input.projectId, rpmLimit: input.rpmLimit ?? null });
  work.emit(input.orgId, { type: 'apiKey.changed', projectId: input.projectId, apiKeyId: id, change: 'created' });
  const apiKey = await loadApiKey(em, id);
  return { apiKey, key };
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
 * so they keep working after `fromUserId` leaves. Nothing the gateway caches depends on the owner.
 */
export async function transferKeysCreatedBy(work: SqlWork, orgId: string, fromUserId: string, toUserId: string): Promise<string[]> {
  const rows = await work.em.execute<RowOf<typeof ApiKey, 'id' | 'project_id' | 'name' | 'prefix'>[]>(
    `update api_key set created_by = ?
      where id in (select id from api_key where org_id = ? and created_by = ? and revoked_at is null order by id for update)
      returning id, project_id, name, prefix`,
    [toUserId, orgId, fromUserId],
  );
  for (const row of rows) {
    work.audit(orgId, 'apiKey.transferred', { type: 'api_key', id: row.id }, { name: row.name, prefix: row.prefix, createdBy: fromUserId }, { createdBy: toUserId });
    work.emit(orgId, { type: 'apiKey.changed', projectId: row.project_id, apiKeyId: row.id, change: 'transferred' });
  }
  return rows.map((r) => r.id);
}
