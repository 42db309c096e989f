/**
 * How an org-scoped procedure finds its organization from its input: `orgId` directly, or the
 * organization owning the referenced resource. Modules register the resources they own.
 */
import type { EntityManager } from '@mikro-orm/postgresql';

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
  const rows = await em.execute<{ id: string }[]>('select id from organization where id = ?', [id]);
  return rows[0]?.id ?? null;
});
registerOrgScopedResource('projectId', 'project');
registerOrgScopedResource('invitationId', 'invitation');

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export type ScopeLookup = { kind: 'none' } | { kind: 'invalid'; key: string } | { kind: 'found'; orgId: string } | { kind: 'missing' };

export async function resolveOrgScope(em: EntityManager, rawInput: unknown): Promise<ScopeLookup> {
  if (!rawInput || typeof rawInput !== 'object') return { kind: 'none' };
  const input = rawInput as Record<string, unknown>;
  for (const [key, resolve] of resolvers) {
    if (!(key in input)) continue;
    const value = input[key];
    if (typeof value !== 'string' || !UUID.test(value)) return { kind: 'invalid', key };
    const orgId = await resolve(em, value);
    return orgId ? { kind: 'found', orgId } : { kind: 'missing' };
  }
  return { kind: 'none' };
}
