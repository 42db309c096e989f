import type { EntityManager } from '@mikro-orm/postgresql';
import { badRequest } from '../../errors.js';
import type { RowOf } from '../../db/rows.js';
import type { AuditEntry } from './entities.js';

const MAX_BIGINT = 9_223_372_036_854_775_807n;

type AuditRow = RowOf<typeof AuditEntry, 'id' | 'actor_id' | 'action' | 'target_type' | 'target_id' | 'before' | 'after' | 'created_at'> & {
  actor_name: string | null;
  actor_email: string | null;
};

export async function listAuditEntries(em: EntityManager, orgId: string, cursor: string | undefined, limit = 50) {
  // A cursor is an audit_log id: a positive bigint (a larger number would fail in PostgreSQL as a 500).
  if (cursor !== undefined && !(/^\d{1,19}$/.test(cursor) && BigInt(cursor) <= MAX_BIGINT)) throw badRequest('cursor is not valid');
  const rows = await em.execute<AuditRow[]>(
    `select a.id, a.actor_id, u.name as actor_name, u.email as actor_email, a.action, a.target_type, a.target_id, a.before, a.after, a.created_at
       from audit_log a left join app_user u on u.id = a.actor_id
      where a.org_id = ? ${cursor ? 'and a.id < ?' : ''}
      order by a.id desc limit ?`,
    cursor ? [orgId, cursor, limit + 1] : [orgId, limit + 1],
  );
  const page = rows.slice(0, limit);
  return {
    items: page.map((r) => ({
      id: String(r.id),
      actor: r.actor_id ? { id: r.actor_id, name: r.actor_name ?? '', email: r.actor_email ?? '' } : null,
      action: r.action,
      target: { type: r.target_type, id: r.target_id },
      before: r.before,
      after: r.after,
      createdAt: r.created_at,
    })),
    nextCursor: rows.length > limit ? String(page[page.length - 1]!.id) : null,
  };
}
