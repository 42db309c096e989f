import type { EntityManager } from '@mikro-orm/postgresql';
import { badRequest, notFound } from '../../errors.js';
import type { RowOf } from '../../db/rows.js';
import type { AuditEntry } from './entities.js';

const MAX_BIGINT = 9_223_372_036_854_775_807n;

type AuditRow = RowOf<typeof AuditEntry, 'id' | 'actor_id' | 'action' | 'target_type' | 'target_id' | 'before' | 'after' | 'created_at'> & {
  actor_name: string | null;
  actor_email: string | null;
  target_name: string | null;
};

export interface AuditFilters {
  /** A user id, or 'system' for entries without an actor (jobs, webhooks, the operator). */
  actorId?: string;
  /** Exact action ids (any of them). */
  actions?: string[];
  from?: Date;
  to?: Date;
}

/**
 * The target's current name, when it still exists (projects, API keys, provider keys, members):
 * entries keep only ids, and a name reads better than an id.
 */
const TARGET_NAME = `case a.target_type
    when 'project' then (select p.name from project p where p.id::text = a.target_id and p.org_id = a.org_id)
    when 'api_key' then (select k.name from api_key k where k.id::text = a.target_id and k.org_id = a.org_id)
    when 'provider_key' then (select pk.name from provider_key pk where pk.id::text = a.target_id and pk.org_id = a.org_id)
    when 'member' then (select coalesce(nullif(m.name, ''), m.email) from app_user m where m.id::text = a.target_id)
  end`;

export async function listAuditEntries(em: EntityManager, orgId: string, cursor: string | undefined, limit = 50, filters: AuditFilters = {}) {
  // A cursor is an audit_log id: a positive bigint (a larger number would fail in PostgreSQL as a 500).
  if (cursor !== undefined && !(/^\d{1,19}$/.test(cursor) && BigInt(cursor) <= MAX_BIGINT)) throw badRequest('cursor is not valid');
  const where = ['a.org_id = ?'];
  const params: unknown[] = [orgId];
  if (cursor) {
    where.push('a.id < ?');
    params.push(cursor);
  }
  if (filters.actorId === 'system') where.push('a.actor_id is null');
  else if (filters.actorId) {
    // An id that never acted here is a mistake (a stale link, another organization's member), not an empty page.
    const acted = await em.execute('select 1 from audit_log where org_id = ? and actor_id = ? limit 1', [orgId, filters.actorId]);
    if (acted.length === 0) throw notFound('person in this audit log');
    where.push('a.actor_id = ?');
    params.push(filters.actorId);
  }
  if (filters.actions?.length) {
    where.push(`a.action in (${filters.actions.map(() => '?').join(', ')})`);
    params.push(...filters.actions);
  }
  if (filters.from) {
    where.push('a.created_at >= ?');
    params.push(filters.from.toISOString());
  }
  if (filters.to) {
    where.push('a.created_at < ?');
    params.push(filters.to.toISOString());
  }
  const rows = await em.execute<AuditRow[]>(
    `select a.id, a.actor_id, u.name as actor_name, u.email as actor_email, a.action, a.target_type, a.target_id, a.before, a.after, a.created_at,
            ${TARGET_NAME} as target_name
       from audit_log a left join app_user u on u.id = a.actor_id
      where ${where.join(' and ')}
      order by a.id desc limit ?`,
    [...params, limit + 1],
  );
  const page = rows.slice(0, limit);
  return {
    items: page.map((r) => ({
      id: String(r.id),
      actor: r.actor_id ? { id: r.actor_id, name: r.actor_name ?? '', email: r.actor_email ?? '' } : null,
      action: r.action,
      target: { type: r.target_type, id: r.target_id, name: r.target_name },
      before: r.before,
      after: r.after,
      createdAt: r.created_at,
    })),
    nextCursor: rows.length > limit ? String(page[page.length - 1]!.id) : null,
  };
}

/** Who appears in the organization's audit log (also people who have left it), for the actor filter; `system` when jobs or the operator acted. */
export async function listAuditActors(em: EntityManager, orgId: string) {
  const rows = await em.execute<{ actor_id: string | null; name: string | null; email: string | null; entries: string }[]>(
    `select a.actor_id, u.name, u.email, count(*) as entries
       from audit_log a left join app_user u on u.id = a.actor_id
      where a.org_id = ? group by a.actor_id, u.name, u.email order by max(a.id) desc limit 500`,
    [orgId],
  );
  return {
    actors: rows.filter((r) => r.actor_id).map((r) => ({ id: r.actor_id!, name: r.name ?? '', email: r.email ?? '', entries: Number(r.entries) })),
    system: rows.some((r) => !r.actor_id),
  };
}
