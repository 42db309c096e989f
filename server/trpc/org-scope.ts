/**
 * How an org-scoped procedure finds its organization from its input: `orgId` directly, or the
 * organization owning the referenced resource. Modules register the resources they own.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import type { RowOf } from '../db/rows.js';
import type { Organization } from '../modules/organizations/entities.js';

type Resolver = (em: EntityManager, id: string) => Promise<string | null>;

const resolvers = new Map<string, Resolver>();

function tableResolver(table: string): Resolver {
  return async (em, id) => {
    const rows = await em.execute<{ org_id: string }[]>(`select org_id from "${table}" where id = ?`, [id]);
    return rows[0]?.org_id ?? null;
  };
}

export function registerOrgScopedResource(inputKey: string, table: string): void {
  resolvers.set(inputKey, tableResolver(table));
}

resolvers.set('orgId', async (em, id) => {
  const rows = await em.execute<RowOf<typeof Organization, 'id'>[]>('select id from organization where id = ?', [id]);
  return rows[0]?.id ?? null;
});
registerOrgScopedResource('projectId', 'project');
registerOrgScopedResource('invitationId', 'invitation');
registerOrgScopedResource('apiKeyId', 'api_key');
registerOrgScopedResource('providerKeyId', 'provider_key');
registerOrgScopedResource('webhookId', 'webhook_endpoint');
registerOrgScopedResource('deliveryId', 'webhook_delivery');

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export type ScopeLookup = { kind: 'none' } | { kind: 'invalid'; key: string } | { kind: 'found'; orgId: string } | { kind: 'missing' };

export async function resolveOrgScope(em: EntityManager, rawInput: unknown): Promise<ScopeLookup> {
  if (!rawInput || typeof rawInput !== 'object') return { kind: 'none' };
  const input = rawInput as Record<string, unknown>;
  let orgId: string | null = null;
  for (const [key, resolve] of resolvers) {
    const value = input[key];
    // An optional id left out (superjson keeps `projectId: undefined` as a key): the schema decides.
    if (value === undefined || value === null) continue;
    if (typeof value !== 'string' || !UUID.test(value)) return { kind: 'invalid', key };
    const owner = await resolve(em, value);
    // Every resource an input names must belong to the same organization: a foreign id is not found.
    if (!owner || (orgId !== null && owner !== orgId)) return { kind: 'missing' };
    orgId = owner;
  }
  return orgId ? { kind: 'found', orgId } : { kind: 'none' };
}
